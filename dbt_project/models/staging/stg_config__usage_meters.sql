with source as (

    select * from {{ source('config', 'usage_meters') }}

)

select meter_name, schema_name, aggregation, attribute_name, unique_by from source
