-- Each account's metering state hash at the last successful metering (see int_account_states).
with source as (

    select * from {{ source('billing_state', 'last_metering_account_states') }}

)

select * from source
