-- Every loaded event with its first status: invalid (with a reason), duplicate, or valid.
-- The order of checks is the order of precedence: a line that cannot be read is invalid even if
-- its id repeats; a repeated id is a duplicate before its content is judged.
with events as (

    select * from {{ ref('stg_raw__events') }}

),

schemas as (

    select * from {{ ref('int_event_schemas_summarized') }}

),

checked as (

    select
        events.*,
        schemas.schema_name is not null as is_known_schema,
        list_filter(map_keys(events.attributes),
                    lambda k: not list_contains(schemas.declared_attributes, k)) as undeclared_attributes,
        list_filter(map_keys(events.attributes),
                    lambda k: {{ attribute_value_problem('events.attributes[k]') }} = 'is not a number')
            as non_numeric_attributes,
        list_filter(list_transform(map_keys(events.attributes),
                                   lambda k: k || ' = ' || events.attributes[k] || ' '
                                             || {{ attribute_value_problem('events.attributes[k]') }}),
                    lambda p: p is not null and not ends_with(p, ' is not a number')) as out_of_range_attributes,
        list_filter(schemas.required_attributes,
                    lambda a: not list_contains(map_keys(events.attributes), a)) as missing_attributes,
        list_filter(map_keys(events.dimensions),
                    lambda k: not list_contains(schemas.declared_dimensions, k)) as undeclared_dimensions
    from events
    left join schemas on schemas.schema_name = events.schema_name

),

reasoned as (

    select
        *,
        case
            when parse_error is not null then parse_error
            when event_id is null then 'missing field: id'
            when schema_name is null then 'missing field: schema'
            when account_id is null then 'missing field: account_id'
            when event_timestamp_text is null then 'missing field: timestamp'
            when is_duplicate then null
            when event_at is null then 'bad timestamp: ' || event_timestamp_text
            when not is_known_schema then 'unknown schema: ' || schema_name
            when len(undeclared_attributes) > 0
                then 'undeclared attribute: ' || array_to_string(undeclared_attributes, ', ')
            when len(non_numeric_attributes) > 0
                then 'non-numeric attribute: ' || array_to_string(non_numeric_attributes, ', ')
            when len(out_of_range_attributes) > 0
                then 'attribute out of range: ' || array_to_string(out_of_range_attributes, ', ')
            when len(undeclared_dimensions) > 0
                then 'undeclared dimension: ' || array_to_string(undeclared_dimensions, ', ')
            when len(missing_attributes) > 0
                then 'missing required attribute: ' || array_to_string(missing_attributes, ', ')
        end as invalid_reason
    from checked

),

final as (

    select
        event_row_id,
        batch_id,
        file_name,
        line_number,
        event_id,
        schema_name,
        account_id,
        event_timestamp_text,
        event_at,
        attributes,
        dimensions,
        case
            when invalid_reason is not null then 'invalid'
            when is_duplicate then 'duplicate'
            else 'valid'
        end as validation_status,
        case
            when invalid_reason is not null then invalid_reason
            when is_duplicate and duplicate_payload_differs
                then 'duplicate id; its payload differs from the first occurrence'
            when is_duplicate then 'duplicate id'
        end as reason
    from reasoned

)

select * from final
