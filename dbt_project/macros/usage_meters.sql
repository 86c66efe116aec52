{#-
    The configured usage meters, read from config.usage_meters when the model executes (never at
    parse time), so a change to pricing_config/ takes effect without a dbt re-parse. Each meter
    carries SQL compiled from its configuration by the catalog (dagster_project/catalog/filters.py):
    the value an event contributes, its distinct value for UNIQUE_COUNT, and its filter; and the
    plans that use it.
-#}
{% macro usage_meters() %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% set query %}
        select m.meter_name, m.schema_name, m.aggregation, m.value_sql, m.distinct_sql, m.filter_sql,
               string_agg(p.plan_name, ',' order by p.plan_name) as plan_names, m.quantity_sql
        from {{ source('config', 'usage_meters') }} m
        left join {{ source('config', 'plan_meters') }} p on p.meter_name = m.meter_name
        group by all
        order by m.meter_name
    {% endset %}
    {% set meters = [] %}
    {% for row in run_query(query).rows %}
        {% do meters.append({
            'meter_name': row[0], 'schema_name': row[1], 'aggregation': row[2],
            'value_sql': row[3], 'distinct_sql': row[4], 'filter_sql': row[5],
            'plan_names': (row[6] or '').split(',') | reject('equalto', '') | list, 'quantity_sql': row[7]}) %}
    {% endfor %}
    {{ return(meters) }}
{% endmacro %}

{#- For each meter (of a plan): the struct an assigned or late event contributes to it, or NULL
    when the meter does not count the event (another schema, another plan, filtered out, or
    without the attribute or dimension the meter aggregates). Comma-separated, for a list literal.
    A late event's values are kept so that `late_events: adjust` can re-rate its cycle. -#}
{% macro meter_value_list(meters) -%}
    {%- for meter in meters -%}
    case
        when assignment_status in ('assigned', 'late')
            and schema_name = '{{ meter.schema_name }}'
            and price_plan in ({% for plan in meter.plan_names %}'{{ plan }}'{% if not loop.last %}, {% endif %}{% endfor %})
            and {{ meter.filter_sql }}
            and ({{ meter.value_sql }} is not null or {{ meter.distinct_sql }} is not null)
        then {{ struct_of([('meter_name', "'" ~ meter.meter_name ~ "'"),
                           ('meter_value', 'cast(' ~ meter.value_sql ~ ' as decimal(38, 9))'),
                           ('distinct_value', 'cast(' ~ meter.distinct_sql ~ ' as varchar)')]) }}
    end{% if not loop.last %},{% endif %}
    {% endfor -%}
{%- endmacro %}

{#- A meter's quantity over its events' values, by the meter's own rule (compiled by the catalog,
    dagster_project/catalog/filters.py QUANTITY_SQL): for a group of events, or as a running value
    with window = ' over <window>'. Each aggregate is filtered to its own meter's rows, so that a
    group computes one meter's aggregate, not every meter's. -#}
{% macro meter_quantity(meters, window='') -%}
    {%- if meters -%}
    case meter_name
    {%- for meter in meters %}
        when '{{ meter.meter_name }}' then {{ meter.quantity_sql | replace('{window}', " filter (where meter_name = '" ~ meter.meter_name ~ "')" ~ window) }}
    {%- endfor %}
    end
    {%- else -%}
    cast(null as decimal(38, 9))
    {%- endif -%}
{%- endmacro %}
