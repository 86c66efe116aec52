-- Every credit grant, from credit_grants.csv and from plan credits (one per cycle).
with grants as (

    select * from {{ ref('int_credit_grants') }}

)

select * from grants
