-- What metering an account's events depends on, as one hash: that the account exists, and its
-- plan assignments with each plan's metering fingerprint (its cycles, meters and entitlements,
-- computed by the catalog). A hash that differs from the one of the last checkpoint re-meters
-- every event of the account (int_touched_accounts).
with accounts as (

    select * from {{ ref('stg_raw__accounts') }}

),

assignments as (

    select * from {{ ref('stg_raw__plan_assignments') }}

),

plans as (

    select * from {{ ref('stg_config__price_plans') }}

),

assignment_states as (

    select
        assignments.account_id,
        string_agg(
            assignments.price_plan || '@' || cast(assignments.start_date as varchar) || '..'
                || coalesce(cast(assignments.end_date as varchar), '') || '#'
                || coalesce(plans.metering_fingerprint, 'unknown plan'),
            ';' order by assignments.start_date
        ) as assignments_state
    from assignments
    left join plans on plans.plan_name = assignments.price_plan
    group by assignments.account_id

),

final as (

    select
        accounts.account_id,
        md5('account;' || coalesce(assignment_states.assignments_state, '')) as state_hash
    from accounts
    left join assignment_states on assignment_states.account_id = accounts.account_id

)

select * from final
