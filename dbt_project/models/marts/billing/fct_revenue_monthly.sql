-- Billed revenue by month of issue, plan and currency, from final invoices only (drafts can
-- still change). Amounts are sums of rounded invoice figures.
with invoices as (

    select * from {{ ref('stg_billing__invoices') }}
    where status = 'final'

),

final as (

    select
        strftime(billing_month, '%Y-%m') || '/' || price_plan || '/' || currency as revenue_id,
        billing_month as revenue_month,
        price_plan,
        currency,
        count(*) as invoice_count,
        sum(subtotal_amount) as subtotal_amount,
        sum(credits_applied_amount) as credits_applied_amount,
        sum(custom_charges_amount) as custom_charges_amount,
        sum(total_amount) as total_amount,
        sum(wallet_applied_amount) as wallet_applied_amount,
        sum(amount_due_amount) as amount_due_amount
    from invoices
    group by billing_month, price_plan, currency

)

select * from final
