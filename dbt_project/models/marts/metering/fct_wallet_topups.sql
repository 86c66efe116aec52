with topups as (

    select * from {{ ref('stg_raw__wallet_topups') }}

)

select * from topups
