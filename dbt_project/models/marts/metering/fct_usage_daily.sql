{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where cycle_id in (select cycle_id from "
             ~ "{{ ref('int_recomputed_cycles') }}) or account_id in (select account_id from "
             ~ "{{ ref('int_touched_accounts') }}){% endif %}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}
-- Account x meter x UTC day, for dashboards. Each day is aggregated the meter's own way (a
-- day's UNIQUE_COUNT is that day's distinct values); days of UNIQUE_COUNT, MAX and LATEST
-- meters do not add up to the cycle's quantity, which is fct_meter_usage's. Incremental by
-- cycle, like int_meter_usage.
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

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

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
        aggregated.account_id || '/' || aggregated.meter_name || '/' || strftime(aggregated.usage_date, '%Y-%m-%d')
            as usage_daily_id,
        aggregated.account_id,
        aggregated.cycle_id,
        aggregated.price_plan,
        aggregated.meter_name,
        meters.aggregation,
        aggregated.usage_date,
        aggregated.quantity,
        aggregated.event_count
    from aggregated
    inner join meters on meters.meter_name = aggregated.meter_name

)

select * from final
