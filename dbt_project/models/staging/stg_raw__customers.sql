with source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        customer_id,
        name as customer_name,
        email,
        address,
        tax_id,
        -- checked when customers.csv is read: a whole number of days, or blank for billing.yaml's terms
        cast(payment_terms_days as integer) as payment_terms_days
    from source

)

select * from renamed
