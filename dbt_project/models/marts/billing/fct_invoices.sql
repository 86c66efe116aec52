-- Every issued invoice and note (drafts and finals) as of the latest run; final rows never change:
-- a voided invoice stays as it was issued, and the credit note that voided it is named here.
with invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

accounts as (

    select * from {{ ref('dim_accounts') }}

),

void_notes as (

    select adjusts_invoice_id, invoice_number from invoices
    where kind = 'credit_note' and adjustment_cause = 'void'

),

final as (

    select
        invoices.*,
        accounts.customer_name,
        adjusted.invoice_number as adjusts_invoice_number,
        replaced.invoice_number as replaces_invoice_number,
        void_notes.invoice_number as voided_by_invoice_number,
        case when invoices.kind = 'credit_note' then -1 else 1 end as revenue_sign
    from invoices
    left join accounts on accounts.account_id = invoices.account_id
    left join invoices as adjusted on adjusted.invoice_id = invoices.adjusts_invoice_id
    left join invoices as replaced on replaced.invoice_id = invoices.replaces_invoice_id
    left join void_notes on void_notes.adjusts_invoice_id = invoices.invoice_id

)

select * from final
