with source as (

    select * from {{ source('config', 'event_schema_attributes') }}

)

select * from source
