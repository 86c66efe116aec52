{{ config(materialized='view') }}
-- Account x meter x UTC day, for dashboards: int_usage_daily with each meter's aggregation. A
-- view: the days are kept once, incrementally, in int_usage_daily, and the publication writes
-- them out a file per month. Days of UNIQUE_COUNT, MAX and LATEST meters do not add up to the
-- cycle's quantity, which is fct_meter_usage's.
with days as (

    select * from {{ ref('int_usage_daily') }}

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

final as (

    select
        days.usage_daily_id,
        days.account_id,
        days.cycle_id,
        days.price_plan,
        days.meter_name,
        meters.aggregation,
        days.usage_date,
        days.quantity,
        days.event_count
    from days
    inner join meters on meters.meter_name = days.meter_name

)

select * from final
