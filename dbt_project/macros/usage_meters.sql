{#-
    The configured usage meters, read from config.usage_meters when the model executes (never at
    parse time), so a change to pricing_config/ takes effect without a dbt re-parse. Each meter
    carries SQL compiled from its configuration by the catalog (dagster_project/catalog/filters.py):
    the value an event contributes, its distinct value for UNIQUE_COUNT, and its filter.
-#}
{% macro usage_meters() %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% set query %}
        select meter_name, schema_name, aggregation, value_sql, distinct_sql, filter_sql
        from {{ source('config', 'usage_meters') }}
        order by meter_name
    {% endset %}
    {% set meters = [] %}
    {% for row in run_query(query).rows %}
        {% do meters.append({
            'meter_name': row[0], 'schema_name': row[1], 'aggregation': row[2],
            'value_sql': row[3], 'distinct_sql': row[4], 'filter_sql': row[5]}) %}
    {% endfor %}
    {{ return(meters) }}
{% endmacro %}
