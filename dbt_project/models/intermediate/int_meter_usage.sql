{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_rows() }}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}
-- Account x meter x cycle: the meter's quantity (by its own rule: count, sum, max, distinct
-- count, or latest value; see the README) and event_count, over the cycle's metered events.
-- COUNT, SUM, MAX and LATEST merge exactly from the cycle's days (int_usage_daily, DAILY_MERGE_SQL),
-- which read the events already; UNIQUE_COUNT is computed from the cycle's events, never merged
-- from partial results. Incremental by cycle: a run recomputes the cycles in
-- int_recomputed_cycles whole and keeps the others.
{%- set meters = usage_meters() %}
{%- set from_events = meters | selectattr('daily_merge_sql', 'none') | list %}
{%- set from_days = meters | rejectattr('daily_merge_sql', 'none') | list %}
{%- set event_schemas = from_events | map(attribute='schema_name') | unique | list %}

with cycles_to_compute as (

    select * from {{ ref('int_recomputed_cycles') }}

),

days as (

    select * from {{ ref('int_usage_daily') }}
    {% if is_incremental() %}
    where cycle_id in (select cycle_id from cycles_to_compute)
    {% endif %}

),

events as {{ inlined_cte() }} (

    select * from {{ ref('int_events') }}
    where status = 'metered'
      and schema_name in ({% for schema in event_schemas %}'{{ schema }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
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
{{ meter_aggregates(from_events, 'values', 'cycle_id, account_id, meter_name') }}
    {%- if from_days %}
    union all
{{ merged_daily_aggregates(from_days, 'days', 'cycle_id, account_id, meter_name') }}
    {%- endif %}

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
