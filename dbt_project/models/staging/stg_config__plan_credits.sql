with source as (

    select * from {{ source('config', 'plan_credits') }}

)

select * from source
