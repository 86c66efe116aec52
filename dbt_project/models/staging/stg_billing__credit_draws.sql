{{ config(tags=['billing']) }}

with source as (

    select * from {{ source('billing', 'credit_draws') }}

)

select * from source
