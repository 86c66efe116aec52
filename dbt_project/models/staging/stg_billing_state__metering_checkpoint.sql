-- The last successful metering: every event of batches up to through_batch is metered; the event
-- schemas it validated with; the date cycles were generated to. Empty before the first run.
with source as (

    select * from {{ source('billing_state', 'last_metering_checkpoint') }}

)

select * from source
