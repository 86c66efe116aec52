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

events as {{ inlined_cte() }} (

    select * from {{ ref('int_events') }}
    where status = 'metered'
    {% if is_incremental() %}
      and cycle_id in (select cycle_id from cycles_to_compute)
      and {{ within_recomputed_periods() }}
    {% endif %}

),

exploded as {{ inlined_cte() }} (

    select cycle_id, account_id, event_at, event_id, unnest(meter_values) as meter
    from events

),

values as {{ inlined_cte() }} (

    select
        cycle_id, account_id, event_at, event_id,
        meter.meter_name as meter_name, meter.meter_value as meter_value, meter.distinct_value as distinct_value
    from exploded

),

aggregated as (
{{ meter_aggregates(meters, 'values', 'cycle_id, account_id, meter_name') }}

),

final as (

    select
        cycle_id || '/' || meter_name as meter_usage_id,
        cycle_id,
        account_id,
        meter_name,
        event_count,
        quantity
    from aggregated

)

select * from final
