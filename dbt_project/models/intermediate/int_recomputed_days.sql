-- The (cycle, UTC day) pairs whose daily aggregates this run recomputes (int_usage_daily): every
-- day holding an event placed in this run and, with usage_date NULL, every day of the cycles
-- recomputed whole: those of accounts whose metering state changed, and those issued in the
-- billing months a backfill asks for (vars recompute_from_month / recompute_to_month). A day is
-- aggregated over all of its events, whichever batch brought them, so a daily run reads the days
-- its batches fall on, not the cycle so far. Their cycles are int_recomputed_cycles.
with touched_accounts as (

    select * from {{ ref('int_touched_accounts') }}

),

events as (

    select * from {{ ref('int_events') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

whole_cycles as (

    select cycle_id from cycles where account_id in (select account_id from touched_accounts)
    union
    select cycle_id from cycles
    where strftime(issue_date, '%Y-%m') between '{{ var("recompute_from_month", "9999-12") }}'
                                            and '{{ var("recompute_to_month", "0000-01") }}'

),

days_of_events as (

    select distinct cycle_id, cast(event_at as date) as usage_date
    from events
    where cycle_id is not null
      and {{ in_metering_scope() }}
      and cycle_id not in (select cycle_id from whole_cycles)

),

final as (

    select
        cycle_id || '/' || strftime(usage_date, '%Y-%m-%d') as recomputed_day_id,
        cycle_id,
        usage_date
    from days_of_events
    union all
    select
        cycle_id || '/whole' as recomputed_day_id,
        cycle_id,
        cast(null as date) as usage_date
    from whole_cycles

)

select * from final
