with source as (

    select * from {{ source('raw', 'events') }}

),

typed as (

    select
        load_seq as event_row_id,
        batch_id,
        file_name,
        line_number,
        event_id,
        schema_name,
        account_id,
        event_timestamp as event_timestamp_text,
        -- a typed timestamp (Parquet) is an instant already; text is parsed, its offset applied
        coalesce(event_timestamp_utc, {{ utc_timestamp('event_timestamp') }}) as event_at,
        coalesce(attributes, map()) as attributes,
        coalesce(dimensions, map()) as dimensions,
        parse_error,
        raw_line,
        is_duplicate,
        duplicate_payload_differs
    from source

)

select * from typed
