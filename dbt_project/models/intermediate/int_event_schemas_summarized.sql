-- One row per event schema with its declared names as lists, for per-event validation.
with schemas as (

    select * from {{ ref('stg_config__event_schemas') }}

),

attributes as (

    select * from {{ ref('stg_config__event_schema_attributes') }}

),

dimensions as (

    select * from {{ ref('stg_config__event_schema_dimensions') }}

),

attribute_lists as (

    select
        schema_name,
        list(attribute_name order by attribute_name) as declared_attributes,
        list(attribute_name order by attribute_name) filter (where is_required) as required_attributes
    from attributes
    group by schema_name

),

dimension_lists as (

    select
        schema_name,
        list(dimension_name order by dimension_name) as declared_dimensions
    from dimensions
    group by schema_name

),

final as (

    select
        schemas.schema_name,
        coalesce(attribute_lists.declared_attributes, cast([] as varchar[])) as declared_attributes,
        coalesce(attribute_lists.required_attributes, cast([] as varchar[])) as required_attributes,
        coalesce(dimension_lists.declared_dimensions, cast([] as varchar[])) as declared_dimensions
    from schemas
    left join attribute_lists on attribute_lists.schema_name = schemas.schema_name
    left join dimension_lists on dimension_lists.schema_name = schemas.schema_name

)

select * from final
