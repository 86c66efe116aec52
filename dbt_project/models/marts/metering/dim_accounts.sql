-- Accounts with their customer and every extra column of accounts.csv (pricing-rule attributes).
with accounts as (

    select * from {{ ref('stg_raw__accounts') }}

),

customers as (

    select * from {{ ref('stg_raw__customers') }}

),

final as (

    select
        accounts.*,
        customers.customer_name
    from accounts
    left join customers on customers.customer_id = accounts.customer_id

)

select * from final
