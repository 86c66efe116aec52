-- Valid events placed in their account's billing cycle, or given the status that explains why
-- not: unknown_account, no_plan (no assignment covers the timestamp), or late (loaded after an
-- earlier run made the cycle's invoice final).
with events as (

    select * from {{ ref('int_events_validated') }}

),

accounts as (

    select * from {{ ref('stg_raw__accounts') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

final_cycles as (

    select * from {{ ref('stg_billing_state__final_cycles') }}

),

placed as (

    select
        events.event_row_id,
        cycles.cycle_id,
        cycles.price_plan
    from events
    inner join cycles
        on cycles.account_id = events.account_id
        and events.event_at >= cycles.period_start_date
        and events.event_at < cycles.period_end_date
    where events.validation_status = 'valid'

),

final as (

    select
        events.*,
        placed.cycle_id,
        placed.price_plan,
        case
            when events.validation_status <> 'valid' then events.validation_status
            when accounts.account_id is null then 'unknown_account'
            when placed.cycle_id is null then 'no_plan'
            when events.batch_id > final_cycles.finalized_after_batch then 'late'
            else 'assigned'
        end as assignment_status
    from events
    left join accounts on accounts.account_id = events.account_id
    left join placed on placed.event_row_id = events.event_row_id
    left join final_cycles on final_cycles.cycle_id = placed.cycle_id

)

select * from final
