-- What this run meters (one row): the events of batches after from_batch (loaded since the last
-- checkpoint) and every event of the accounts in int_touched_accounts; on a full refresh, every
-- event (from_batch 0). Also how far billing cycles are generated: through the day after the
-- run's date, through the latest event (at most a year ahead: a timestamp far in the future
-- must not make every account's cycles run for decades), and never short of an earlier run.
with checkpoint as (

    select * from {{ ref('stg_billing_state__metering_checkpoint') }}

),

loads as (

    select * from {{ source('raw', 'event_file_loads') }}

),

events as (

    select * from {{ ref('stg_raw__events') }}

),

bounds as (

    select
        {% if flags.FULL_REFRESH %}0{% else %}coalesce((select max(through_batch) from checkpoint), 0){% endif %}
            as from_batch,
        coalesce((select max(batch_id) from loads), 0) as to_batch,
        {% if flags.FULL_REFRESH %}cast(null as date){% else %}(select max(horizon_date) from checkpoint){% endif %}
            as checkpoint_horizon_date

),

final as (

    select
        bounds.from_batch,
        bounds.to_batch,
        {{ 'true' if flags.FULL_REFRESH else 'false' }} as is_full_refresh,
        greatest(
            {{ as_of_date() }} + 1,
            coalesce(bounds.checkpoint_horizon_date, {{ as_of_date() }} + 1),
            least(
                coalesce((select cast(max(event_at) as date) + 1 from events where batch_id > bounds.from_batch),
                         {{ as_of_date() }} + 1),
                {{ as_of_date() }} + 366
            )
        ) as horizon_date
    from bounds

)

select * from final
