with source as (

    select * from {{ source('config', 'plan_entitlements') }}

)

select * from source
