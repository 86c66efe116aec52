-- One row per document that billed a cycle's late events: a note issued for them
-- (`late_events: adjust`) or an invoice `tally void` issued in place of a voided one. Each first
-- billed the late events loaded in batches after_batch < batch_id <= through_batch (the batch
-- the previous such document, or the cycle's first final invoice, saw; and the one it saw).
with invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where status = 'final'

),

first_finals as (

    select cycle_id, min(finalized_after_batch) as finalized_after_batch
    from invoices
    where kind = 'cycle'
    group by cycle_id

),

billing_documents as (

    select * from invoices
    where adjustment_cause = 'late_events' or (kind = 'cycle' and replaces_invoice_id is not null)

),

final as (

    select
        billing_documents.invoice_id,
        billing_documents.invoice_number,
        billing_documents.kind,
        billing_documents.account_id,
        billing_documents.cycle_id,
        coalesce(
            lag(billing_documents.finalized_after_batch) over (
                partition by billing_documents.cycle_id
                order by billing_documents.finalized_after_batch, billing_documents.invoice_sequence,
                         billing_documents.invoice_id),
            first_finals.finalized_after_batch
        ) as after_batch,
        billing_documents.finalized_after_batch as through_batch
    from billing_documents
    left join first_finals on first_finals.cycle_id = billing_documents.cycle_id

)

select * from final
