with source as (

    select * from {{ source('config', 'event_schemas') }}

)

select * from source
