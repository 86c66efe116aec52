-- Accounts whose metering state changed since the last checkpoint (new, removed, or with other
-- assignments or plan settings): every event of theirs is metered again in this run.
with current_states as (

    select * from {{ ref('int_account_states') }}

),

checkpoint_states as (

    select * from {{ ref('stg_billing_state__metering_account_states') }}

),

final as (

    select coalesce(current_states.account_id, checkpoint_states.account_id) as account_id
    from current_states
    full outer join checkpoint_states on checkpoint_states.account_id = current_states.account_id
    where current_states.state_hash is distinct from checkpoint_states.state_hash

)

select * from final
