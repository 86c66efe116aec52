-- Every evaluation of every pricing rule on every invoice (README): whether its condition held,
-- the values of the variables it read, what it computed, and the amounts before and after.
with evaluations as (

    select * from {{ ref('stg_billing__pricing_rule_evaluations') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

final as (

    select
        evaluations.invoice_id || '/' || evaluations.rule_name as evaluation_id,
        evaluations.*,
        invoices.account_id,
        invoices.status as invoice_status,
        invoices.invoice_number
    from evaluations
    inner join invoices on invoices.invoice_id = evaluations.invoice_id

)

select * from final
