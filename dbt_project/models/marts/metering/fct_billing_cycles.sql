-- Every billing cycle of every account up to the run's horizon; rating reads the closed ones.
with cycles as (

    select * from {{ ref('int_billing_cycles') }}

)

select * from cycles
