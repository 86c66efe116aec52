{{ config(tags=['billing']) }}

with source as (

    select * from {{ source('billing', 'pricing_rule_evaluations') }}

)

select * from source
