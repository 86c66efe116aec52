{{ config(tags=['billing'], meta={'dagster': {'ref': {'name': 'event_pipeline_log'}}}) }}
-- Nothing is lost (SPEC 3.2): the log has one row per loaded line, no more, no fewer.
with loaded as (

    select count(*) as lines from {{ source('raw', 'events') }}

),

logged as (

    select count(*) as lines, count(distinct event_row_id) as distinct_lines from {{ ref('event_pipeline_log') }}

)

select loaded.lines as loaded_lines, logged.lines as logged_lines
from loaded cross join logged
where loaded.lines <> logged.lines or logged.lines <> logged.distinct_lines
