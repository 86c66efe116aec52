{#- Whether a value is plain decimal text within the limits: what nearly every value is, checked in
    one match, and the first case of attribute_value_problem. The pattern is rendered as one literal:
    DuckDB compiles a constant pattern once, but one built with || in SQL for every row. -#}
{% macro is_plain_decimal(value) -%}
    regexp_full_match(trim({{ value }}), '[+-]?\d{1,{{ var('value_integer_digits', 18) }}}(\.\d{0,{{ var('value_decimal_places', 9) }}})?')
{%- endmacro %}

{#- Why an attribute value's text cannot be metered exactly, or NULL when it can. A value must be a
    decimal number (an exponent is allowed) with at most var('value_integer_digits') digits before
    the decimal point and var('value_decimal_places') after it; the pipeline passes the limits of
    dagster_project/limits.py. Digits are counted on the text, so no value is ever rounded first:
    the significant digits D = integer digits || fraction digits, the decimal point after P =
    len(integer digits) + exponent of them; leading and trailing zeros do not count. -#}
{% macro attribute_value_problem(value) -%}
    {%- set text = "trim(" ~ value ~ ")" -%}
    {%- set digits = "(regexp_extract(" ~ text ~ ", '^[+-]?(\\d*)', 1) || coalesce(regexp_extract(" ~ text ~ ", '\\.(\\d*)', 1), ''))" -%}
    {%- set point = "(length(regexp_extract(" ~ text ~ ", '^[+-]?(\\d*)', 1)) + coalesce(try_cast(regexp_extract(" ~ text ~ ", '[eE]([+-]?\\d+)$', 1) as integer), 0))" -%}
    {%- set leading = "(length(" ~ digits ~ ") - length(ltrim(" ~ digits ~ ", '0')))" -%}
    {%- set trailing = "(length(" ~ digits ~ ") - length(rtrim(" ~ digits ~ ", '0')))" -%}
    case
        when {{ is_plain_decimal(value) }} then null
        when not regexp_full_match({{ text }}, '[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?') then 'is not a number'
        when ltrim({{ digits }}, '0') = '' then null
        when {{ point }} - {{ leading }} > {{ var('value_integer_digits', 18) }}
            then 'has ' || ({{ point }} - {{ leading }}) || ' digits before the decimal point; the supported range is '
                 || {{ var('value_integer_digits', 18) }}
        when length({{ digits }}) - {{ trailing }} - {{ point }} > {{ var('value_decimal_places', 9) }}
            then 'has ' || (length({{ digits }}) - {{ trailing }} - {{ point }})
                 || ' decimal places; the supported scale is ' || {{ var('value_decimal_places', 9) }}
    end
{%- endmacro %}
