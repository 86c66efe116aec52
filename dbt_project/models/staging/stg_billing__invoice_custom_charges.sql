{{ config(tags=['billing']) }}

with source as (

    select * from {{ source('billing', 'invoice_custom_charges') }}

)

select * from source
