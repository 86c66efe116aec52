{{ config(materialized='view') }}
-- One row per (metered event, meter that counts it): the values behind every meter quantity, for
-- audits and `tally entitlements`. A view over int_events, so it costs nothing to keep.
with events as (

    select * from {{ ref('int_events') }}
    where status = 'metered'

),

unnested as (

    select
        event_row_id,
        event_id,
        account_id,
        cycle_id,
        price_plan,
        event_at,
        unnest(meter_values) as meter
    from events

),

final as (

    select
        cast(event_row_id as varchar) || '/' || meter.meter_name as metered_event_id,
        event_row_id,
        event_id,
        account_id,
        cycle_id,
        price_plan,
        event_at,
        meter.meter_name as meter_name,
        meter.meter_value as meter_value,
        meter.distinct_value as distinct_value
    from unnested

)

select * from final
