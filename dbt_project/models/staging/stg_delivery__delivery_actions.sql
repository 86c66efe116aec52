{{ config(tags=['delivery']) }}

with source as (

    select * from {{ source('delivery', 'delivery_actions') }}

)

select * from source
