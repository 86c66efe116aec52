-- One row per (event, meter) for every meter of the event's plan that counts it: the event's
-- schema is the meter's, it passes the meter's filter, and it carries the aggregated attribute
-- or dimension (an event without it contributes nothing, SPEC 2.2). The per-meter SQL is
-- compiled from pricing_config/ and read at execution time; see macros/usage_meters.sql.
{%- set meters = usage_meters() %}

with events as (

    select * from {{ ref('int_events_assigned') }}
    where assignment_status = 'assigned'

),

plan_meters as (

    select * from {{ ref('stg_config__plan_meters') }}

),
{% for meter in meters %}
meter_{{ meter.meter_name }} as (

    select
        event_row_id,
        event_id,
        account_id,
        cycle_id,
        price_plan,
        event_at,
        '{{ meter.meter_name }}' as meter_name,
        {{ meter.value_sql }} as meter_value,
        {{ meter.distinct_sql }} as distinct_value
    from events
    where schema_name = '{{ meter.schema_name }}'
      and price_plan in (select plan_name from plan_meters where meter_name = '{{ meter.meter_name }}')
      and {{ meter.filter_sql }}

),
{% endfor %}
final as (
{% for meter in meters %}
    select * from meter_{{ meter.meter_name }}
    where meter_value is not null or distinct_value is not null
    {% if not loop.last %}union all{% endif %}
{% else %}
    select
        cast(null as bigint) as event_row_id,
        cast(null as varchar) as event_id,
        cast(null as varchar) as account_id,
        cast(null as varchar) as cycle_id,
        cast(null as varchar) as price_plan,
        cast(null as timestamp) as event_at,
        cast(null as varchar) as meter_name,
        cast(null as decimal(38, 9)) as meter_value,
        cast(null as varchar) as distinct_value
    where false
{% endfor %}
)

select
    cast(event_row_id as varchar) || '/' || meter_name as metered_event_id,
    *
from final
