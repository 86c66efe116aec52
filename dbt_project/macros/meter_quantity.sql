{#- A meter's quantity from the aggregates of its events (SPEC 2.2): one definition for the cycle
    (fct_meter_usage) and the day (fct_usage_daily). -#}
{% macro meter_quantity(aggregation, event_count, sum_value, max_value, latest_value, unique_count) -%}
    cast(case {{ aggregation }}
        when 'COUNT' then cast({{ event_count }} as decimal(38, 9))
        when 'SUM' then {{ sum_value }}
        when 'MAX' then {{ max_value }}
        when 'LATEST' then {{ latest_value }}
        when 'UNIQUE_COUNT' then cast({{ unique_count }} as decimal(38, 9))
    end as decimal(38, 9))
{%- endmacro %}
