{{ config(tags=['billing']) }}
-- The invoices as the run will commit them: is_committed is bookkeeping of the run in progress
-- (the billing marts are built just before publishing commits), so it is left out.
with source as (

    select * from {{ source('billing', 'invoices') }}

)

select * exclude (document_json, is_committed) from source
