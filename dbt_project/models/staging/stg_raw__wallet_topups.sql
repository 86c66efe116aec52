with source as (

    select * from {{ source('raw', 'wallet_topups') }}

),

typed as (

    select
        topup_id,
        account_id,
        cast(amount as decimal(38, 18)) as amount,
        cast("date" as date) as topup_date
    from source

)

select * from typed
