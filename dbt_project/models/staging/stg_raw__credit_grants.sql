with source as (

    select * from {{ source('raw', 'credit_grants') }}

),

typed as (

    select
        grant_id,
        account_id,
        cast(amount as decimal(38, 18)) as amount,
        coalesce(applies_to, 'all') as applies_to,
        cast(granted_date as date) as granted_date,
        cast(expiry_date as date) as expiry_date,
        coalesce(cast(priority as integer), 0) as priority
    from source

)

select * from typed
