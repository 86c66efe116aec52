-- Account x meter x UTC day, for dashboards. Each day is aggregated the meter's own way (a
-- day's UNIQUE_COUNT is that day's distinct values); days of UNIQUE_COUNT, MAX and LATEST
-- meters do not add up to the cycle's quantity, which is fct_meter_usage's.
with metered as (

    select * from {{ ref('int_events_metered') }}

),

meters as (

    select * from {{ ref('stg_config__usage_meters') }}

),

dated as (

    select
        metered.*,
        cast(metered.event_at as date) as usage_date,
        meters.aggregation
    from metered
    inner join meters on meters.meter_name = metered.meter_name

),

latest_ranked as (

    select
        account_id,
        meter_name,
        usage_date,
        meter_value,
        row_number() over (partition by account_id, meter_name, usage_date order by event_at desc, event_id desc)
            as recency
    from dated
    where aggregation = 'LATEST'

),

aggregated as (

    select
        account_id,
        cycle_id,
        price_plan,
        meter_name,
        aggregation,
        usage_date,
        count(*) as event_count,
        sum(meter_value) as sum_value,
        max(meter_value) as max_value,
        count(distinct distinct_value) as unique_count
    from dated
    group by account_id, cycle_id, price_plan, meter_name, aggregation, usage_date

),

final as (

    select
        aggregated.account_id || '/' || aggregated.meter_name || '/' || strftime(aggregated.usage_date, '%Y-%m-%d')
            as usage_daily_id,
        aggregated.account_id,
        aggregated.cycle_id,
        aggregated.price_plan,
        aggregated.meter_name,
        aggregated.aggregation,
        aggregated.usage_date,
        {{ meter_quantity('aggregated.aggregation', 'aggregated.event_count', 'aggregated.sum_value',
                          'aggregated.max_value', 'latest_ranked.meter_value', 'aggregated.unique_count') }}
            as quantity,
        aggregated.event_count
    from aggregated
    left join latest_ranked
        on latest_ranked.account_id = aggregated.account_id
        and latest_ranked.meter_name = aggregated.meter_name
        and latest_ranked.usage_date = aggregated.usage_date
        and latest_ranked.recency = 1

)

select * from final
