with customers as (

    select * from {{ ref('stg_raw__customers') }}

)

select * from customers
