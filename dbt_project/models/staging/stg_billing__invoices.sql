{{ config(tags=['billing']) }}

with source as (

    select * from {{ source('billing', 'invoices') }}

)

select * exclude (document_json, document_html) from source
