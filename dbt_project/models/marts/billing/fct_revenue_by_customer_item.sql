-- Billed revenue by month of issue, customer, billable item and currency, from the lines of final
-- documents (drafts can still change), net of notes: a credit note's lines subtract, a debit
-- note's add. Line amounts only: credits, custom charges and the wallet apply to whole documents
-- (see fct_revenue_monthly). Pricing-rule and true-up lines have no item: one row per line type.
with lines as (

    select * from {{ ref('fct_invoice_lines') }}
    where invoice_status = 'final'

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

final as (

    select
        strftime(invoices.billing_month, '%Y-%m') || '/' || coalesce(invoices.customer_id, '') || '/'
            || lines.line_type || '/' || coalesce(lines.billable_item, '') || '/' || invoices.currency as revenue_id,
        invoices.billing_month as revenue_month,
        invoices.customer_id,
        any_value(invoices.customer_name) as customer_name,
        lines.line_type,
        lines.billable_item,
        invoices.currency,
        count(distinct lines.invoice_id) filter (where invoices.kind in ('cycle', 'opening')) as invoice_count,
        count(distinct lines.invoice_id) filter (where invoices.kind = 'credit_note') as credit_note_count,
        count(distinct lines.invoice_id) filter (where invoices.kind = 'debit_note') as debit_note_count,
        sum(lines.revenue_sign * lines.quantity) as quantity,
        sum(lines.revenue_sign * lines.amount) as amount
    from lines
    inner join invoices on invoices.invoice_id = lines.invoice_id
    group by invoices.billing_month, invoices.customer_id, lines.line_type, lines.billable_item, invoices.currency

)

select * from final
