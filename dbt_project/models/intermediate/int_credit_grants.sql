-- Every credit grant: the rows of credit_grants.csv, and one grant per cycle for each plan credit
-- (granted on the cycle's start; with `expires: end_of_cycle`, expiring at its end). A grant pays
-- for invoices whose period_end lies in (granted_date, expiry_date] (README).
with csv_grants as (

    select * from {{ ref('stg_raw__credit_grants') }}

),

plan_credits as (

    select * from {{ ref('stg_config__plan_credits') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

per_cycle as (

    select
        'plan/' || cycles.cycle_id || '/' || plan_credits.credit_number as grant_id,
        cycles.account_id,
        plan_credits.amount,
        plan_credits.applies_to,
        cycles.period_start_date as granted_date,
        case when plan_credits.expires = 'end_of_cycle' then cycles.period_end_date end as expiry_date,
        plan_credits.priority,
        'plan' as grant_source,
        cycles.cycle_id
    from cycles
    inner join plan_credits on plan_credits.plan_name = cycles.price_plan

),

final as (

    select
        grant_id, account_id, amount, applies_to, granted_date, expiry_date, priority,
        'credit_grants.csv' as grant_source,
        cast(null as varchar) as cycle_id
    from csv_grants
    union all
    select * from per_cycle

)

select * from final
