{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_rows() }}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}, {{ ref('int_billing_cycles') }}
-- Account x meter x cycle: the meter's quantity (by its own rule: count, sum, max, distinct
-- count, or latest value; see the README) and event_count, merged exactly from the cycle's days:
-- COUNT, SUM, MAX and LATEST from their daily aggregates (int_usage_daily, DAILY_MERGE_SQL), and
-- UNIQUE_COUNT by counting the distinct values of the cycle's days (int_distinct_values_daily),
-- never from partial counts. It reads no events: they were read once, into their days.
-- Incremental by cycle: a run recomputes the cycles in int_recomputed_cycles whole and keeps the
-- others.
{%- set meters = usage_meters() %}
{%- set from_values = meters | selectattr('daily_merge_sql', 'none') | list %}
{%- set from_days = meters | rejectattr('daily_merge_sql', 'none') | list %}
{%- set value_rules = from_values | map(attribute='quantity_sql') | unique | list %}

with cycles_to_compute as (

    select * from {{ ref('int_recomputed_cycles') }}

),

days as (

    select * from {{ ref('int_usage_daily') }}
    {% if is_incremental() %}
    where cycle_id in (select cycle_id from cycles_to_compute)
    {% endif %}

),

distinct_values as (

    select * from {{ ref('int_distinct_values_daily') }}
    {% if is_incremental() %}
    where cycle_id in (select cycle_id from cycles_to_compute)
    {% endif %}

),

counted_values as (
    {%- for rule in value_rules %}
    select cycle_id, meter_name, {{ rule | replace('{window}', '') }} as quantity
    from distinct_values
    where meter_name in ({% for meter in from_values if meter.quantity_sql == rule %}'{{ meter.meter_name }}'{% if not loop.last %}, {% endif %}{% endfor %})
    group by cycle_id, meter_name
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- else %}
    select cycle_id, meter_name, cast(null as decimal(38, 9)) as quantity
    from distinct_values
    where false
    {%- endfor %}

),

counted_days as (

    select cycle_id, account_id, meter_name, cast(sum(event_count) as bigint) as event_count
    from days
    where meter_name in ({% for meter in from_values %}'{{ meter.meter_name }}'{% if not loop.last %}, {% endif %}{% else %}null{% endfor %})
    group by cycle_id, account_id, meter_name

),

aggregated as (

    select
        counted_days.cycle_id, counted_days.account_id, counted_days.meter_name, counted_days.event_count,
        coalesce(counted_values.quantity, 0) as quantity
    from counted_days
    left join counted_values
        on counted_values.cycle_id = counted_days.cycle_id and counted_values.meter_name = counted_days.meter_name
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
