with lines as (

    select * from {{ ref('stg_billing__invoice_lines') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

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
        invoices.invoice_number
    from lines
    inner join invoices on invoices.invoice_id = lines.invoice_id

)

select * from final
