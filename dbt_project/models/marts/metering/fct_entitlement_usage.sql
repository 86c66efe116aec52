-- Account x feature x cycle for every entitlement of the cycle's plan (SPEC 4.8). Unmetered
-- features are flags (no limit, no usage). Metered ones: the meter's quantity against the limit,
-- and exceeded_at, the timestamp of the event that took usage past the limit.
with cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

entitlements as (

    select * from {{ ref('stg_config__plan_entitlements') }}

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

usage as (

    select * from {{ ref('fct_meter_usage') }}

),

metered as (

    select * from {{ ref('int_events_metered') }}
    where meter_name in (select meter_name from entitlements where meter_name is not null)

),

firsts as (

    -- a UNIQUE_COUNT grows only with a value's first event in the cycle
    select
        *,
        row_number() over (
            partition by cycle_id, meter_name, distinct_value order by event_at, event_id
        ) = 1 as is_first_of_value
    from metered

),

running as (

    select
        firsts.cycle_id,
        firsts.meter_name,
        firsts.event_at,
        firsts.event_id,
        meters.aggregation,
        firsts.meter_value,
        case meters.aggregation
            when 'SUM' then sum(firsts.meter_value) over ordered
            when 'COUNT' then cast(count(*) over ordered as decimal(38, 9))
            when 'MAX' then max(firsts.meter_value) over ordered
            when 'UNIQUE_COUNT' then cast(count(*) filter (where firsts.is_first_of_value) over ordered
                                          as decimal(38, 9))
            when 'LATEST' then firsts.meter_value
        end as used_so_far
    from firsts
    inner join meters on meters.meter_name = firsts.meter_name
    window ordered as (
        partition by firsts.cycle_id, firsts.meter_name order by firsts.event_at, firsts.event_id
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

crossings as (

    select
        limited.cycle_id,
        limited.feature,
        min(limited.event_at) as exceeded_at
    from limited
    left join last_within_limit
        on last_within_limit.cycle_id = limited.cycle_id and last_within_limit.feature = limited.feature
    where limited.used_so_far > limited.usage_limit
      and (limited.aggregation <> 'LATEST' or limited.event_at > coalesce(last_within_limit.last_within_at,
                                                                           timestamp '1900-01-01'))
    group by limited.cycle_id, limited.feature

),

final as (

    select
        cycles.cycle_id || '/' || entitlements.feature as entitlement_usage_id,
        cycles.account_id,
        cycles.price_plan,
        cycles.cycle_id,
        cycles.period_start_date,
        cycles.period_end_date,
        entitlements.feature,
        entitlements.billable_name,
        entitlements.meter_name,
        entitlements.meter_name is not null as is_metered,
        entitlements.usage_limit,
        case when entitlements.meter_name is not null then coalesce(usage.quantity, 0) end as used,
        case when entitlements.meter_name is not null
            then greatest(entitlements.usage_limit - coalesce(usage.quantity, 0), 0) end as remaining,
        coalesce(coalesce(usage.quantity, 0) > entitlements.usage_limit, false) as is_exceeded,
        case when coalesce(usage.quantity, 0) > entitlements.usage_limit then crossings.exceeded_at end
            as exceeded_at
    from cycles
    inner join entitlements on entitlements.plan_name = cycles.price_plan
    left join usage on usage.cycle_id = cycles.cycle_id and usage.meter_name = entitlements.meter_name
    left join crossings on crossings.cycle_id = cycles.cycle_id and crossings.feature = entitlements.feature

)

select * from final
