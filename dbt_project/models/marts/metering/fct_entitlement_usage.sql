-- Account x feature x cycle for every entitlement of the cycle's plan (README). Unmetered
-- features are flags (no limit, no usage). Metered ones: the meter's quantity against the limit,
-- and exceeded_at, the timestamp of the event that took usage past the limit.
with cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

entitlements as (

    select * from {{ ref('stg_config__plan_entitlements') }}

),

usage as (

    select * from {{ ref('fct_meter_usage') }}

),

crossings as (

    select * from {{ ref('int_entitlement_crossings') }}

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
