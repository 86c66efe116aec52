{{ config(tags=['billing']) }}

with source as (

    select * from {{ source('billing', 'wallet_draws') }}

)

select * from source
