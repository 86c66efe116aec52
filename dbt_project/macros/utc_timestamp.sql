{#- ISO-8601 text to a UTC timestamp: an offset is converted, no offset means UTC; NULL if unreadable. -#}
{% macro utc_timestamp(column) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'tally')(column)) }}
{%- endmacro %}

{% macro duckdb__utc_timestamp(column) -%}
    cast(timezone('UTC', try_cast({{ column }} as timestamptz)) as timestamp)
{%- endmacro %}
