with source as (

    select * from {{ source('billing_state', 'final_cycles') }}

)

select * from source
