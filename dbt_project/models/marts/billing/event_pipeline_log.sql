{{ config(materialized='view') }}
-- Exactly one row, and one status, for every event line ever loaded (README), with the meters
-- that counted it and the invoice it went to (the cycle's current one: once voided, the invoice
-- issued in its place), and for a late event the document that billed it, if any: the audit
-- trail from invoice lines to events. A view over int_events (incremental) and the invoices, so
-- it never rewrites millions of rows because an invoice became final.
with events as (

    select * from {{ ref('int_events') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}
    where kind = 'cycle' and voided_by_invoice_number is null

),

late_event_billing as (

    select * from {{ ref('fct_late_event_billing') }}

),

held_accounts as (

    select * from {{ ref('stg_input_problems__held_accounts') }}

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
        events.status,
        case
            when events.status = 'unknown_account' and held_accounts.account_id is not null
                then 'account ''' || events.account_id || ''' is held back: ' || held_accounts.held_reason
            else events.reason
        end as reason,
        case when events.status = 'metered'
            then list_sort({{ list_map('events.meter_values', 'x.meter_name') }}) end as meter_names,
        events.cycle_id,
        events.price_plan,
        case when events.status = 'metered' then invoices.invoice_id end as invoice_id,
        case when events.status = 'metered' then invoices.invoice_number end as invoice_number,
        late_event_billing.invoice_id as adjusted_by_invoice_id,
        late_event_billing.invoice_number as adjusted_by_invoice_number
    from events
    left join invoices on invoices.cycle_id = events.cycle_id
    left join late_event_billing
        on events.status = 'late'
        and late_event_billing.cycle_id = events.cycle_id
        and events.batch_id > late_event_billing.after_batch
        and events.batch_id <= late_event_billing.through_batch
    left join held_accounts on held_accounts.account_id = events.account_id

)

select * from final
