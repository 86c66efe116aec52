-- Account x meter x cycle: the meter's quantity and event_count for every meter of the cycle's
-- plan (0 when nothing was metered, so that every usage line exists). UNIQUE_COUNT, MAX and
-- LATEST are computed over the whole cycle, never assembled from daily figures.
with cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

plan_meters as (

    select * from {{ ref('stg_config__plan_meters') }}

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

metered as (

    select * from {{ ref('int_events_metered') }}

),

aggregated as (

    select
        cycle_id,
        meter_name,
        count(*) as event_count,
        sum(meter_value) as sum_value,
        max(meter_value) as max_value,
        count(distinct distinct_value) as unique_count
    from metered
    group by cycle_id, meter_name

),

latest_ranked as (

    select
        cycle_id,
        meter_name,
        meter_value,
        row_number() over (partition by cycle_id, meter_name order by event_at desc, event_id desc) as recency
    from metered
    where meter_name in (select meter_name from meters where aggregation = 'LATEST')

),

latest as (

    select cycle_id, meter_name, meter_value from latest_ranked where recency = 1

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
        coalesce({{ meter_quantity('meters.aggregation', 'aggregated.event_count', 'aggregated.sum_value',
                                   'aggregated.max_value', 'latest.meter_value', 'aggregated.unique_count') }},
                 0) as quantity,
        coalesce(aggregated.event_count, 0) as event_count
    from cycles
    inner join plan_meters on plan_meters.plan_name = cycles.price_plan
    inner join meters on meters.meter_name = plan_meters.meter_name
    left join aggregated
        on aggregated.cycle_id = cycles.cycle_id and aggregated.meter_name = plan_meters.meter_name
    left join latest
        on latest.cycle_id = cycles.cycle_id and latest.meter_name = plan_meters.meter_name

)

select * from final
