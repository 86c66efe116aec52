with source as (

    select * from {{ source('raw', 'plan_assignments') }}

),

typed as (

    select
        account_id || '/' || start_date as assignment_id,
        account_id,
        price_plan,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date
    from source

)

select * from typed
