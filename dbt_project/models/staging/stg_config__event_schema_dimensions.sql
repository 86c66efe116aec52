with source as (

    select * from {{ source('config', 'event_schema_dimensions') }}

)

select * from source
