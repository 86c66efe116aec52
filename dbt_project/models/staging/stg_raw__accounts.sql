-- Columns beyond the documented ones are account attributes for pricing rules: kept as they are.
with source as (

    select * from {{ source('raw', 'accounts') }}

),

typed as (

    select
        * replace (cast(tax_rate as decimal(38, 18)) as tax_rate)
    from source

)

select * from typed
