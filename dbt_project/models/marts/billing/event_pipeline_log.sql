-- Exactly one row, and one status, for every event line ever loaded (SPEC 3.2), with the meters
-- that counted it and the invoice it went to: the audit trail from invoice lines to events.
with events as (

    select * from {{ ref('int_events_assigned') }}

),

metered as (

    select * from {{ ref('int_events_metered') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where kind = 'cycle'

),

held_accounts as (

    select * from {{ ref('stg_input_problems__held_accounts') }}

),

meters_by_event as (

    select
        event_row_id,
        list(meter_name order by meter_name) as meter_names
    from metered
    group by event_row_id

),

final as (

    select
        events.event_row_id,
        events.event_id,
        events.file_name,
        events.line_number,
        events.batch_id,
        events.schema_name,
        events.account_id,
        events.event_at,
        case
            when events.assignment_status <> 'assigned' then events.assignment_status
            when meters_by_event.event_row_id is not null then 'metered'
            else 'unmatched'
        end as status,
        case
            when events.assignment_status = 'unknown_account' and held_accounts.account_id is not null
                then 'account ''' || events.account_id || ''' is held back: ' || held_accounts.held_reason
            when events.assignment_status = 'unknown_account' then 'unknown account: ' || events.account_id
            when events.assignment_status = 'no_plan'
                then 'no plan assignment covers ' || strftime(events.event_at, '%Y-%m-%dT%H:%M:%SZ')
            when events.assignment_status = 'late'
                then 'loaded after the invoice of cycle ' || events.cycle_id || ' was final'
            when events.assignment_status = 'assigned' and meters_by_event.event_row_id is null
                then 'no meter of plan ' || events.price_plan || ' matches'
            else events.reason
        end as reason,
        meters_by_event.meter_names,
        events.cycle_id,
        events.price_plan,
        case when meters_by_event.event_row_id is not null then invoices.invoice_id end as invoice_id,
        case when meters_by_event.event_row_id is not null then invoices.invoice_number end as invoice_number
    from events
    left join meters_by_event on meters_by_event.event_row_id = events.event_row_id
    left join invoices on invoices.cycle_id = events.cycle_id
    left join held_accounts on held_accounts.account_id = events.account_id

)

select * from final
