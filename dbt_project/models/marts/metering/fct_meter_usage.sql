-- Account x meter x cycle: the meter's quantity and event_count for every meter of the cycle's
-- plan (0 when nothing was metered, so that every usage line exists). Each quantity is exact over
-- the whole cycle's events (int_meter_usage): UNIQUE_COUNT counts distinct values, LATEST takes the
-- latest event's value, never a sum of daily figures.
with cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

plan_meters as (

    select * from {{ ref('stg_config__plan_meters') }}

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

aggregates as (

    select * from {{ ref('int_meter_usage') }}

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
        coalesce(aggregates.event_count, 0) as event_count
    from cycles
    inner join plan_meters on plan_meters.plan_name = cycles.price_plan
    inner join meters on meters.meter_name = plan_meters.meter_name
    left join aggregates
        on aggregates.cycle_id = cycles.cycle_id and aggregates.meter_name = plan_meters.meter_name

)

select * from final
