{{ config(meta={'dagster': {'ref': {'name': 'int_events'}}}) }}
-- Nothing is lost (README): one row per loaded line, no more, no fewer, each with one status.
-- Counting is cheap at any volume; uniqueness is checked on the lines metered in this run (the
-- incremental model replaces rows by event_row_id, so earlier ones cannot repeat).
with loaded as (

    select count(*) as lines from {{ source('raw', 'events') }}

),

logged as (

    select count(*) as lines, count(*) filter (where status is null) as without_status
    from {{ ref('int_events') }}

),

repeated as (

    select count(*) as lines
    from (
        select event_row_id from {{ ref('int_events') }}
        where batch_id > (select from_batch from {{ ref('int_metering_scope') }})
        group by event_row_id having count(*) > 1
    ) as repeats

)

select loaded.lines as loaded_lines, logged.lines as logged_lines, logged.without_status,
       repeated.lines as repeated_lines
from loaded cross join logged cross join repeated
where loaded.lines <> logged.lines or logged.without_status > 0 or repeated.lines > 0
