{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='event_row_id') }}
-- depends_on: {{ ref('int_metering_scope') }}, {{ ref('int_touched_accounts') }}
-- One row and one status per loaded event line (README), with the cycle it belongs to and the
-- value it gives each meter of its plan that counts it. Built incrementally: a run computes only
-- the events of the batches loaded since the last checkpoint and every event of the accounts
-- whose assignments or plans changed (int_metering_scope, int_touched_accounts); a full refresh
-- computes every event, with the same result.
--
-- Status precedence: an unreadable line or a missing field is invalid; a repeated id is a
-- duplicate; then a bad timestamp, unknown schema, undeclared, non-numeric or out-of-range
-- attribute, undeclared dimension or missing required attribute is invalid; then unknown_account,
-- no_plan, late (loaded in a batch after the one its cycle's invoice was made final with), and
-- metered (counted by at least one meter of its plan) or unmatched.
--
-- The meters' SQL is compiled from pricing_config/ and read at execution time (usage_meters()).
{%- set meters = usage_meters() | selectattr('plan_names') | list %}

with events as (

    select * from {{ ref('stg_raw__events') }}
    {% if is_incremental() %}
    where {{ in_metering_scope() }}
    {% endif %}

),

schemas as (

    select * from {{ ref('int_event_schemas_summarized') }}

),

accounts as (

    select * from {{ ref('stg_raw__accounts') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

final_cycles as (

    select * from {{ ref('stg_billing_state__final_cycles') }}

),

screened as (

    -- the usual event (every attribute and dimension declared, the required ones there, every
    -- value plain decimal text within the limits) is told apart in a few cheap matches, and only
    -- the others go through the detailed checks that name what is wrong
    select
        events.*,
        schemas.schema_name is not null as is_known_schema,
        schemas.declared_attributes,
        schemas.declared_dimensions,
        schemas.required_attributes,
        coalesce(
            {{ list_all(map_keys_of('events.attributes'), 'list_contains(schemas.declared_attributes, x)') }}
            and {{ list_all(map_keys_of('events.dimensions'), 'list_contains(schemas.declared_dimensions, x)') }}
            and {{ list_all('schemas.required_attributes', 'list_contains(' ~ map_keys_of('events.attributes') ~ ', x)') }}
            and {{ list_all(map_values_of('events.attributes'), is_plain_decimal('x')) }},
            false) as is_plain
    from events
    left join schemas on schemas.schema_name = events.schema_name

),

checked as (

    select
        *,
        case when is_plain then cast([] as varchar[]) else
            {{ list_where(map_keys_of('attributes'), 'not list_contains(declared_attributes, x)') }}
        end as undeclared_attributes,
        case when is_plain then cast([] as varchar[]) else
            {{ list_where(map_keys_of('attributes'),
                          attribute_value_problem(map_value('attributes', 'x')) ~ " = 'is not a number'") }}
        end as non_numeric_attributes,
        case when is_plain then cast([] as varchar[]) else
            {{ list_where(list_map(map_keys_of('attributes'),
                                   "x || ' = ' || " ~ map_value('attributes', 'x') ~ " || ' ' || "
                                   ~ attribute_value_problem(map_value('attributes', 'x'))),
                          "x is not null and not ends_with(x, ' is not a number')") }}
        end as out_of_range_attributes,
        case when is_plain then cast([] as varchar[]) else
            {{ list_where('required_attributes', 'not list_contains(' ~ map_keys_of('attributes') ~ ', x)') }}
        end as missing_attributes,
        case when is_plain then cast([] as varchar[]) else
            {{ list_where(map_keys_of('dimensions'), 'not list_contains(declared_dimensions, x)') }}
        end as undeclared_dimensions
    from screened

),

validated as (

    select
        *,
        case
            when parse_error is not null then parse_error
            when event_id is null then 'missing field: id'
            when schema_name is null then 'missing field: schema'
            when account_id is null then 'missing field: account_id'
            when event_timestamp_text is null and event_at is null then 'missing field: timestamp'
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

assigned as (

    -- cycles of one account never overlap: a valid event is placed in at most one
    select
        validated.*,
        cycles.cycle_id,
        cycles.price_plan,
        case
            when validated.invalid_reason is not null then 'invalid'
            when validated.is_duplicate then 'duplicate'
            when accounts.account_id is null then 'unknown_account'
            when cycles.cycle_id is null then 'no_plan'
            when validated.batch_id > final_cycles.finalized_after_batch then 'late'
            else 'assigned'
        end as assignment_status
    from validated
    left join accounts on accounts.account_id = validated.account_id
    left join cycles
        on cycles.account_id = validated.account_id
        and validated.event_at >= cycles.period_start_date
        and validated.event_at < cycles.period_end_date
        and validated.invalid_reason is null
        and not validated.is_duplicate
    left join final_cycles on final_cycles.cycle_id = cycles.cycle_id

),

metered as (

    select
        *,
        {% if meters %}
        {{ list_where('[' ~ meter_value_list(meters) ~ ']', 'x is not null') }}
        {% else %}
        cast([] as struct(meter_name varchar, meter_value decimal(38, 9), distinct_value varchar)[])
        {% endif %} as meter_values
    from assigned

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
        event_at,
        case
            when assignment_status <> 'assigned' then assignment_status
            when len(meter_values) > 0 then 'metered'
            else 'unmatched'
        end as status,
        case
            when invalid_reason is not null then invalid_reason
            when is_duplicate and duplicate_payload_differs
                then 'duplicate id; its payload differs from the first occurrence'
            when is_duplicate then 'duplicate id'
            when assignment_status = 'unknown_account' then 'unknown account: ' || account_id
            when assignment_status = 'no_plan'
                then 'no plan assignment covers ' || strftime(event_at, '%Y-%m-%dT%H:%M:%SZ')
            when assignment_status = 'late' then 'loaded after the invoice of cycle ' || cycle_id || ' was final'
            when len(meter_values) = 0 then 'no meter of plan ' || price_plan || ' matches'
        end as reason,
        case when assignment_status in ('assigned', 'late') then cycle_id end as cycle_id,
        case when assignment_status in ('assigned', 'late') then price_plan end as price_plan,
        -- a late event keeps the values it would have given: a correction re-rates its cycle with them
        case when assignment_status in ('assigned', 'late') then meter_values
             else cast([] as struct(meter_name varchar, meter_value decimal(38, 9), distinct_value varchar)[])
        end as meter_values,
        -- the metering run that computed the row: the publication rewrites what changed since it
        cast({{ var('metering_run', 0) }} as integer) as metered_run
    from metered

)

select * from final
