{{ config(tags=['delivery']) }}
-- Every action of every delivery run, with the document it delivered: a send ('sending', then
-- 'delivered' or 'failed', under one attempt number) or a skip with its reason.
with actions as (

    select * from {{ ref('stg_delivery__delivery_actions') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

final as (

    select
        actions.invoice_id || '/' || actions.channel || '/' || actions.attempt || '/' || actions.status
            as delivery_action_id,
        actions.run_id,
        actions.invoice_id,
        actions.invoice_number,
        invoices.kind,
        invoices.account_id,
        invoices.customer_id,
        invoices.issue_date,
        actions.channel,
        actions.idempotency_key,
        actions.attempt,
        actions.status,
        actions.recipient,
        actions.response,
        actions.error,
        actions.started_at,
        actions.finished_at,
        -- an attempt's outcome comes after its 'sending' row
        row_number() over (
            partition by actions.invoice_id, actions.channel
            order by actions.attempt desc, actions.status = 'sending'
        ) = 1 as is_latest
    from actions
    left join invoices on invoices.invoice_id = actions.invoice_id

)

select * from final
