{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_days() }}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}, {{ ref('int_recomputed_days') }}
-- Account x meter x UTC day x distinct value, for the meters whose days do not merge into their
-- cycle's quantity by a figure (UNIQUE_COUNT: a value seen on two days counts once). Sets merge
-- exactly where counts do not, so int_meter_usage counts a cycle's distinct values over its days'
-- rows here, and a daily run reads only the events of its days. Incremental by day, like
-- int_usage_daily: a run recomputes the days in int_recomputed_days and keeps the others.
{%- set meters = usage_meters() | selectattr('daily_merge_sql', 'none') | list %}
{%- set event_schemas = meters | map(attribute='schema_name') | unique | list %}

with events as {{ inlined_cte() }} (

    select * from {{ ref('int_events') }} as events
    where status = 'metered'
      and schema_name in ({% for schema in event_schemas %}'{{ schema }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
    {% if is_incremental() %}
      and {{ on_recomputed_days('events.cycle_id', 'events.event_at') }}
    {% endif %}

),

exploded as {{ inlined_cte() }} (

    select account_id, cycle_id, cast(event_at as date) as usage_date, unnest(meter_values) as meter
    from events

),

final as (

    select distinct
        account_id || '/' || meter.meter_name || '/' || strftime(usage_date, '%Y-%m-%d') || '/'
            || meter.distinct_value as distinct_value_daily_id,
        account_id,
        cycle_id,
        meter.meter_name as meter_name,
        usage_date,
        meter.distinct_value as distinct_value
    from exploded
    where meter.meter_name in ({% for meter in meters %}'{{ meter.meter_name }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
      and meter.distinct_value is not null

)

select * from final
