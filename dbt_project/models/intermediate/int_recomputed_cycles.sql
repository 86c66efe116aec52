-- The cycles whose meter aggregates this run recomputes: every cycle holding an event metered in
-- this run, every cycle of an account whose metering state changed, and the cycles issued in the
-- billing months a backfill asks for (vars recompute_from_month / recompute_to_month). Meters of
-- every other cycle are kept as they are.
with touched_accounts as (

    select * from {{ ref('int_touched_accounts') }}

),

events as (

    select * from {{ ref('int_events') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

of_events as (

    select distinct cycle_id
    from events
    where cycle_id is not null
      and {{ in_metering_scope() }}

),

of_accounts as (

    select cycle_id from cycles where account_id in (select account_id from touched_accounts)

),

of_months as (

    select cycle_id from cycles
    where strftime(issue_date, '%Y-%m') between '{{ var("recompute_from_month", "9999-12") }}'
                                            and '{{ var("recompute_to_month", "0000-01") }}'

),

final as (

    select cycle_id from of_events
    union
    select cycle_id from of_accounts
    union
    select cycle_id from of_months

)

select * from final
