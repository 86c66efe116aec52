-- Account x meter x cycle for every cycle that received late events: the meter's quantity over all
-- of the cycle's events, the late ones included. What a correction prices: `late_events: adjust`
-- re-rates such a cycle, and `tally void` issues the fresh invoice of a cycle, from it. Computed
-- over the whole cycle (never merged from partial results), like fct_meter_usage.
{%- set meters = usage_meters() %}

with late_events as (

    select * from {{ ref('int_events') }}
    where status = 'late'

),

events as (

    select * from {{ ref('int_events') }}
    where status in ('metered', 'late')
      and cycle_id in (select cycle_id from late_events)

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}
    where cycle_id in (select cycle_id from late_events)

),

latest_late_batches as (

    select cycle_id, max(batch_id) as latest_late_batch from late_events group by cycle_id

),

plan_meters as (

    select * from {{ ref('stg_config__plan_meters') }}

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

exploded as {{ inlined_cte() }} (

    select cycle_id, event_at, event_id, unnest(meter_values) as meter
    from events

),

values as {{ inlined_cte() }} (

    select
        cycle_id, event_at, event_id,
        meter.meter_name as meter_name, meter.meter_value as meter_value, meter.distinct_value as distinct_value
    from exploded

),

aggregates as (
{{ meter_aggregates(meters, 'values', 'cycle_id, meter_name') }}

),

final as (

    select
        cycles.cycle_id || '/' || plan_meters.meter_name as meter_usage_id,
        cycles.cycle_id,
        cycles.account_id,
        cycles.price_plan,
        cycles.period_start_date,
        cycles.period_end_date,
        cycles.is_closed,
        plan_meters.meter_name,
        meters.aggregation,
        coalesce(aggregates.quantity, 0) as quantity,
        coalesce(aggregates.event_count, 0) as event_count,
        latest_late_batches.latest_late_batch
    from cycles
    inner join plan_meters on plan_meters.plan_name = cycles.price_plan
    inner join meters on meters.meter_name = plan_meters.meter_name
    inner join latest_late_batches on latest_late_batches.cycle_id = cycles.cycle_id
    left join aggregates
        on aggregates.cycle_id = cycles.cycle_id and aggregates.meter_name = plan_meters.meter_name

)

select * from final
