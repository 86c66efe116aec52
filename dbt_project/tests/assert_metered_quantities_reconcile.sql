{{ config(meta={'dagster': {'ref': {'name': 'fct_meter_usage'}}}) }}
-- Additive meters: each day this run recomputed has exactly the quantity and event_count of its
-- metered events, and each cycle it recomputed the sums of its days. A full refresh recomputes
-- every day, and a later run keeps the days it does not recompute, so a cycle's quantity and
-- event_count are exactly those of its metered events, checked without reading the events of the
-- days before.
with recomputed_days as (

    select * from {{ ref('int_recomputed_days') }}

),

recomputed_cycles as (

    select * from {{ ref('int_recomputed_cycles') }}

),

additive_meters as (

    select meter_name from {{ ref('stg_config__usage_meters') }}
    where aggregation in ('COUNT', 'SUM')

),

days as (

    select * from {{ ref('int_usage_daily') }} as daily
    where meter_name in (select meter_name from additive_meters)
      and {{ on_recomputed_days('daily.cycle_id', 'daily.usage_date') }}

),

metered_days as (

    select
        cycle_id, meter_name, cast(event_at as date) as usage_date,
        sum(meter_value) as value_sum, count(*) as events
    from {{ ref('int_events_metered') }} as metered
    where meter_name in (select meter_name from additive_meters)
      and {{ on_recomputed_days('metered.cycle_id', 'metered.event_at') }}
    group by cycle_id, meter_name, cast(event_at as date)

),

day_mismatches as (

    select coalesce(days.usage_daily_id, metered_days.cycle_id || '/' || metered_days.meter_name || '/'
                    || strftime(metered_days.usage_date, '%Y-%m-%d')) as failing_id
    from days
    full outer join metered_days
        on metered_days.cycle_id = days.cycle_id
        and metered_days.meter_name = days.meter_name
        and metered_days.usage_date = days.usage_date
    where coalesce(days.quantity, 0) <> coalesce(metered_days.value_sum, 0)
       or coalesce(days.event_count, 0) <> coalesce(metered_days.events, 0)

),

summed_days as (

    select cycle_id, meter_name, sum(quantity) as quantity, sum(event_count) as event_count
    from {{ ref('int_usage_daily') }}
    where meter_name in (select meter_name from additive_meters)
      and cycle_id in (select cycle_id from recomputed_cycles)
    group by cycle_id, meter_name

),

cycle_mismatches as (

    select usage.meter_usage_id as failing_id
    from {{ ref('fct_meter_usage') }} as usage
    left join summed_days on summed_days.cycle_id = usage.cycle_id and summed_days.meter_name = usage.meter_name
    where usage.meter_name in (select meter_name from additive_meters)
      and usage.cycle_id in (select cycle_id from recomputed_cycles)
      and (usage.quantity <> coalesce(summed_days.quantity, 0)
           or usage.event_count <> coalesce(summed_days.event_count, 0))

)

select failing_id from day_mismatches
union all
select failing_id from cycle_mismatches
