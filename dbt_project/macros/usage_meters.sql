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
               string_agg(p.plan_name, ',' order by p.plan_name) as plan_names, m.quantity_sql,
               m.daily_merge_sql, m.daily_key_sql
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
            'plan_names': (row[6] or '').split(',') | reject('equalto', '') | list, 'quantity_sql': row[7],
            'daily_merge_sql': row[8], 'daily_key_sql': row[9]}) %}
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

{#- A meter's quantity as a running value over a window (' over <window>'), by the meter's own rule
    (compiled by the catalog, dagster_project/catalog/filters.py QUANTITY_SQL), each aggregate
    filtered to its own meter's rows. Groups use meter_aggregates instead. -#}
{% macro meter_quantity(meters, window) -%}
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

{#- Rows of a relation of meter values (meter_name, meter_value, distinct_value, event_at,
    event_id) grouped by `keys`, a column list that includes meter_name: the keys, event_count and
    the quantity by the meter's own rule (QUANTITY_SQL). One group-by per rule over its own meters'
    rows, joined by union all, so that a group holds the state of its own aggregate only: one
    group-by carrying every rule's aggregate in every group (LATEST's arg_max beside the sums)
    took 97 s for the 14M account-days of 100M events, where this takes 30 s. With daily_keys, also
    the columns a day keeps for its cycle's merge (DAILY_KEY_SQL, latest_event_at and
    latest_event_id), null for the meters whose rule has none. -#}
{% macro meter_aggregates(meters, relation, keys, daily_keys=false) -%}
    {%- set rules = meters | map(attribute='quantity_sql') | unique | list -%}
    {%- for rule in rules %}
    select {{ keys }}, count(*) as event_count, {{ rule | replace('{window}', '') }} as quantity
        {%- if daily_keys %}, {{ (meters | selectattr('quantity_sql', 'equalto', rule) | first).daily_key_sql or no_daily_key_columns() }}{% endif %}
    from {{ relation }}
    where meter_name in ({% for meter in meters if meter.quantity_sql == rule %}'{{ meter.meter_name }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by {{ keys }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
    {%- if not rules %}
    select {{ keys }}, count(*) as event_count, cast(null as decimal(38, 9)) as quantity
        {%- if daily_keys %}, {{ no_daily_key_columns() }}{% endif %}
    from {{ relation }}
    where false
    group by {{ keys }}
    {%- endif %}
{%- endmacro %}

{#- A day's merge key columns for the meters whose DAILY_MERGE_SQL needs none (all but LATEST). -#}
{% macro no_daily_key_columns() -%}
    cast(null as timestamp) as latest_event_at, cast(null as varchar) as latest_event_id
{%- endmacro %}

{#- Rows of a relation of daily aggregates (int_usage_daily's columns) grouped by `keys`, a column list
    that includes meter_name: the keys, event_count and the quantity merged from the days by each
    meter's DAILY_MERGE_SQL (dagster_project/catalog/filters.py). Only meters whose days merge
    exactly belong in `meters`. -#}
{% macro merged_daily_aggregates(meters, relation, keys) -%}
    {%- set rules = meters | map(attribute='daily_merge_sql') | unique | list -%}
    {%- for rule in rules %}
    select {{ keys }}, cast(sum(event_count) as bigint) as event_count, {{ rule }} as quantity
    from {{ relation }}
    where meter_name in ({% for meter in meters if meter.daily_merge_sql == rule %}'{{ meter.meter_name }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by {{ keys }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
