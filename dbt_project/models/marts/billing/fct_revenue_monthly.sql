-- Billed revenue by month of issue, plan and currency, from final documents only (drafts can
-- still change), net of notes: a credit note subtracts, a debit note adds. Amounts are sums of
-- rounded document figures.
with invoices as (

    select * from {{ ref('fct_invoices') }}
    where status = 'final'

),

final as (

    select
        strftime(billing_month, '%Y-%m') || '/' || price_plan || '/' || currency as revenue_id,
        billing_month as revenue_month,
        price_plan,
        currency,
        count(*) filter (where kind in ('cycle', 'opening')) as invoice_count,
        count(*) filter (where kind = 'credit_note') as credit_note_count,
        count(*) filter (where kind = 'debit_note') as debit_note_count,
        sum(revenue_sign * subtotal_amount) as subtotal_amount,
        sum(revenue_sign * credits_applied_amount) as credits_applied_amount,
        sum(revenue_sign * custom_charges_amount) as custom_charges_amount,
        sum(revenue_sign * total_amount) as total_amount,
        sum(revenue_sign * wallet_applied_amount) as wallet_applied_amount,
        sum(revenue_sign * amount_due_amount) as amount_due_amount
    from invoices
    group by billing_month, price_plan, currency

)

select * from final
