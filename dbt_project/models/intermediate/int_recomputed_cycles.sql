-- The cycles whose meter aggregates this run recomputes (int_meter_usage and the entitlement
-- crossings, each cycle whole): those of int_recomputed_days, that is every cycle holding an event
-- placed in this run, every cycle of an account whose metering state changed, and the cycles
-- issued in the billing months a backfill asks for. Meters of every other cycle are kept as they
-- are.
with recomputed_days as (

    select * from {{ ref('int_recomputed_days') }}

),

final as (

    select distinct cycle_id
    from recomputed_days

)

select * from final
