-- Every issued invoice (drafts and finals) as of the latest run; final rows never change.
with invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

accounts as (

    select * from {{ ref('dim_accounts') }}

),

final as (

    select
        invoices.*,
        accounts.customer_name
    from invoices
    left join accounts on accounts.account_id = invoices.account_id

)

select * from final
