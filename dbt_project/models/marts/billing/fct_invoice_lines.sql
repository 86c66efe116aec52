with lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

final as (

    select
        lines.*,
        invoices.account_id,
        invoices.price_plan,
        invoices.currency,
        invoices.period_start_date,
        invoices.period_end_date,
        invoices.status as invoice_status,
        invoices.invoice_number,
        invoices.kind as invoice_kind,
        invoices.revenue_sign
    from lines
    inner join invoices on invoices.invoice_id = lines.invoice_id

)

select * from final
