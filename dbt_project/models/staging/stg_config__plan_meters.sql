with source as (

    select * from {{ source('config', 'plan_meters') }}

)

select * from source
