with source as (

    select * from {{ source('raw', 'license_updates') }}

),

typed as (

    select
        account_id,
        billable_item,
        cast(quantity as decimal(38, 18)) as quantity,
        cast(effective_date as date) as effective_date
    from source

)

select * from typed
