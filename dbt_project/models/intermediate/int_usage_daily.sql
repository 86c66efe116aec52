{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_days() }}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}, {{ ref('int_recomputed_days') }}
-- Account x meter x UTC day. Each day is aggregated the meter's own way (a day's UNIQUE_COUNT is
-- that day's distinct values), and a LATEST day keeps the key of its latest event. The days of
-- COUNT, SUM, MAX and LATEST meters merge exactly into their cycle's quantity (DAILY_MERGE_SQL),
-- and int_meter_usage takes those from here; a UNIQUE_COUNT cycle takes its event_count from
-- here and its quantity from the days' distinct values (int_distinct_values_daily). Incremental by
-- day: a run recomputes the days in int_recomputed_days, each over all of its events, and keeps
-- the others.
{%- set meters = usage_meters() %}

with events as {{ inlined_cte() }} (

    select * from {{ ref('int_events') }} as events
    where status = 'metered'
    {% if is_incremental() %}
      and {{ on_recomputed_days('events.cycle_id', 'events.event_at') }}
    {% endif %}

),

exploded as {{ inlined_cte() }} (

    select account_id, cycle_id, price_plan, event_at, event_id, unnest(meter_values) as meter
    from events

),

values as {{ inlined_cte() }} (

    select
        account_id, cycle_id, price_plan, event_at, event_id, cast(event_at as date) as usage_date,
        meter.meter_name as meter_name, meter.meter_value as meter_value, meter.distinct_value as distinct_value
    from exploded

),

aggregated as (
{{ meter_aggregates(meters, 'values', 'account_id, cycle_id, price_plan, meter_name, usage_date', daily_keys=true) }}

),

final as (

    select
        account_id || '/' || meter_name || '/' || strftime(usage_date, '%Y-%m-%d') as usage_daily_id,
        account_id,
        cycle_id,
        price_plan,
        meter_name,
        usage_date,
        quantity,
        event_count,
        latest_event_at,
        latest_event_id,
        -- the metering run that computed the row: the publication rewrites the days it changed
        cast({{ var('metering_run', 0) }} as integer) as metered_run
    from aggregated

)

select * from final
