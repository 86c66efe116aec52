{{ config(
    materialized='incremental',
    incremental_strategy='append',
    pre_hook="{{ delete_recomputed_rows() }}"
) }}
-- depends_on: {{ ref('int_touched_accounts') }}
-- For each cycle x metered entitlement whose usage is over its limit: exceeded_at, the timestamp
-- of the event that took the running usage (sum, count, distinct count, max) past the limit; for
-- a LATEST gauge, the first event of the final stretch above it. Only the cycles whose quantity
-- (int_meter_usage) is over a limit have their events read: the others have no crossing to show
-- (fct_entitlement_usage gives exceeded_at where the quantity is over the limit), and reading
-- every event of every open cycle made this model's cost grow with the month (1.4 s of a daily
-- run ten days into it at 10M events). Incremental by cycle, like int_meter_usage.
{%- set meters = usage_meters() %}

with cycles_to_compute as (

    select * from {{ ref('int_recomputed_cycles') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

entitlements as (

    select * from {{ ref('stg_config__plan_entitlements') }}
    where meter_name is not null

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

usage as (

    select * from {{ ref('int_meter_usage') }}
    {% if is_incremental() %}
    where cycle_id in (select cycle_id from cycles_to_compute)
    {% endif %}

),

over_limit as (

    select distinct usage.cycle_id, usage.meter_name
    from usage
    inner join cycles on cycles.cycle_id = usage.cycle_id
    inner join entitlements
        on entitlements.plan_name = cycles.price_plan and entitlements.meter_name = usage.meter_name
    where usage.quantity > entitlements.usage_limit

),

events as (

    -- the cycle alone first: it is a column of int_events, filtered before the view unnests the
    -- meters; the (cycle, meter) pairs then keep the meters over a limit
    select * from {{ ref('int_events_metered') }}
    where cycle_id in (select cycle_id from over_limit)
      and (cycle_id, meter_name) in (select cycle_id, meter_name from over_limit)

),

running as (

    select
        cycle_id,
        account_id,
        meter_name,
        event_at,
        event_id,
        {{ meter_quantity(meters, window=' over ordered') }} as used_so_far
    from events
    window ordered as (
        partition by cycle_id, meter_name order by event_at, event_id
        rows between unbounded preceding and current row
    )

),

limited as (

    select
        running.*,
        entitlements.usage_limit,
        entitlements.feature
    from running
    inner join cycles on cycles.cycle_id = running.cycle_id
    inner join entitlements
        on entitlements.plan_name = cycles.price_plan and entitlements.meter_name = running.meter_name

),

last_within_limit as (

    -- for a LATEST gauge, usage can fall back under the limit: it was exceeded from the first
    -- event after the last one within the limit
    select cycle_id, feature, max(event_at) as last_within_at
    from limited
    where used_so_far <= usage_limit
    group by cycle_id, feature

),

final as (

    select
        limited.cycle_id || '/' || limited.feature as entitlement_crossing_id,
        limited.cycle_id,
        limited.account_id,
        limited.feature,
        min(limited.event_at) as exceeded_at
    from limited
    left join last_within_limit
        on last_within_limit.cycle_id = limited.cycle_id and last_within_limit.feature = limited.feature
    inner join meters on meters.meter_name = limited.meter_name
    where limited.used_so_far > limited.usage_limit
      and (meters.aggregation <> 'LATEST' or limited.event_at > coalesce(last_within_limit.last_within_at,
                                                                           timestamp '1900-01-01'))
    group by limited.cycle_id, limited.account_id, limited.feature

)

select * from final
