{{ config(tags=['billing'], meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}
-- subtotal = sum of lines; total = subtotal - credits + charges; amount due = total - wallet.
with invoices as (

    select * from {{ ref('fct_invoices') }}

),

lines as (

    select invoice_id, sum(amount) as lines_amount from {{ ref('fct_invoice_lines') }} group by invoice_id

),

charges as (

    select invoice_id, sum(amount) as charges_amount
    from {{ ref('stg_billing__invoice_custom_charges') }}
    group by invoice_id

)

select invoices.invoice_id
from invoices
left join lines on lines.invoice_id = invoices.invoice_id
left join charges on charges.invoice_id = invoices.invoice_id
where invoices.subtotal_amount <> coalesce(lines.lines_amount, 0)
   or invoices.custom_charges_amount <> coalesce(charges.charges_amount, 0)
   or invoices.total_amount
      <> invoices.subtotal_amount - invoices.credits_applied_amount + invoices.custom_charges_amount
   or invoices.amount_due_amount <> invoices.total_amount - invoices.wallet_applied_amount
