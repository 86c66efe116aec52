{#- The run's date: cycles whose end is on or before it are closed (README). -#}
{% macro as_of_date() -%}
    {%- if var('as_of', '') -%}
        cast('{{ var("as_of") }}' as date)
    {%- else -%}
        current_date
    {%- endif -%}
{%- endmacro %}
