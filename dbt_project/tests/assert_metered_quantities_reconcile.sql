{{ config(meta={'dagster': {'ref': {'name': 'fct_meter_usage'}}}) }}
-- Additive meters: a cycle's quantity and event_count are exactly those of its metered events
-- (checked on the cycles this run recomputed).
with recomputed as (

    select * from {{ ref('int_recomputed_cycles') }}

),

usage as (

    select * from {{ ref('fct_meter_usage') }}
    where aggregation in ('COUNT', 'SUM') and cycle_id in (select cycle_id from recomputed)

),

metered as (

    select cycle_id, meter_name, sum(meter_value) as value_sum, count(*) as events
    from {{ ref('int_events_metered') }}
    where cycle_id in (select cycle_id from recomputed) and {{ within_recomputed_periods() }}
    group by cycle_id, meter_name

)

select usage.meter_usage_id
from usage
left join metered on metered.cycle_id = usage.cycle_id and metered.meter_name = usage.meter_name
where usage.quantity <> coalesce(metered.value_sum, 0)
   or usage.event_count <> coalesce(metered.events, 0)
