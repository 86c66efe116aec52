{{ config(tags=['billing']) }}

with source as (

    select * from {{ source('billing', 'invoice_lines') }}

),

keyed as (

    select
        invoice_id || '#' || line_number as invoice_line_id,
        *
    from source

)

select * from keyed
