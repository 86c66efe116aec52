{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where cycle_id in (select cycle_id from "
             ~ "{{ ref('int_recomputed_cycles') }}) or account_id in (select account_id from "
             ~ "{{ ref('int_touched_accounts') }}){% endif %}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}
-- Account x meter x cycle: the meter's quantity (by its own rule: count, sum, max, distinct
-- count, or latest value; see the README) and event_count, over the cycle's metered events.
-- Incremental by cycle: a run recomputes the cycles in int_recomputed_cycles from all of their
-- events (never by merging partial results: a distinct count or a latest value cannot be
-- merged) and keeps the others.
{%- set meters = usage_meters() %}

with cycles_to_compute as (

    select * from {{ ref('int_recomputed_cycles') }}

),

events as (

    select * from {{ ref('int_events') }}
    where status = 'metered'
    {% if is_incremental() %}
      and cycle_id in (select cycle_id from cycles_to_compute)
      and {{ within_recomputed_periods() }}
    {% endif %}

),

exploded as (

    select cycle_id, account_id, event_at, event_id, unnest(meter_values) as meter
    from events

),

values as (

    select
        cycle_id, account_id, event_at, event_id,
        meter.meter_name as meter_name, meter.meter_value as meter_value, meter.distinct_value as distinct_value
    from exploded

),

final as (

    select
        cycle_id || '/' || meter_name as meter_usage_id,
        cycle_id,
        account_id,
        meter_name,
        count(*) as event_count,
        {{ meter_quantity(meters) }} as quantity
    from values
    group by cycle_id, account_id, meter_name

)

select * from final
