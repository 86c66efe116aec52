{{ config(meta={'dagster': {'ref': {'name': 'int_events'}}}) }}
-- Nothing is lost (README): one row per loaded line, no more, no fewer, each with one status.
-- Counting is cheap at any volume. That no line has two rows is int_events' primary key test, on
-- the lines metered in this run (the incremental model replaces rows by event_row_id, so earlier
-- ones cannot repeat): with equal counts, no line is missing either.
with loaded as (

    select count(*) as lines from {{ source('raw', 'events') }}

),

logged as (

    select count(*) as lines, count(*) filter (where status is null) as without_status
    from {{ ref('int_events') }}

)

select loaded.lines as loaded_lines, logged.lines as logged_lines, logged.without_status
from loaded cross join logged
where loaded.lines <> logged.lines or logged.without_status > 0
