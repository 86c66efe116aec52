with source as (

    select * from {{ source('config', 'price_plans') }}

)

select * from source
