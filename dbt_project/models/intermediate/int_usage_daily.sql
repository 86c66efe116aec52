{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_rows('usage_date') }}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}
-- Account x meter x UTC day. Each day is aggregated the meter's own way (a day's UNIQUE_COUNT is
-- that day's distinct values). The days of COUNT, SUM and MAX meters merge exactly into their
-- cycle's quantity, and int_meter_usage takes those from here; days of UNIQUE_COUNT and LATEST
-- meters do not. Incremental by cycle, like int_meter_usage.
{%- set meters = usage_meters() %}

with cycles_to_compute as (

    select * from {{ ref('int_recomputed_cycles') }}

),

events as {{ inlined_cte() }} (

    select * from {{ ref('int_events') }}
    where status = 'metered'
    {% if is_incremental() %}
      and cycle_id in (select cycle_id from cycles_to_compute)
      and {{ within_recomputed_periods() }}
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
{{ meter_aggregates(meters, 'values', 'account_id, cycle_id, price_plan, meter_name, usage_date') }}

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
        -- the metering run that computed the row: the publication rewrites the months it changed
        cast({{ var('metering_run', 0) }} as integer) as metered_run
    from aggregated

)

select * from final
