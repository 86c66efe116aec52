{#-
    What an incremental metering run covers, read when a model runs and written into its SQL as
    literals. A filter on a subquery (`batch_id > (select from_batch from ...)`) is joined, not
    pushed into the table scan, so every row group of 100M events is read; a literal is checked
    against each row group's min and max, and the row groups of earlier batches (or of other
    months) are skipped unread. At parse time (execute is false) they render as placeholders.
-#}

{#- int_metering_scope's from_batch: events of later batches are metered in this run. -#}
{% macro metering_from_batch() -%}
    {%- set scope = ref('int_metering_scope') -%}  {#- a ref at parse time too: the model depends on it -#}
    {%- if execute -%}
        {{ return(run_query('select from_batch from ' ~ scope).columns[0].values()[0]) }}
    {%- endif -%}
    {{ return(0) }}
{%- endmacro %}

{#- Whether any account's metering state changed (int_touched_accounts): usually none. -#}
{% macro any_touched_accounts() -%}
    {%- set touched = ref('int_touched_accounts') -%}
    {%- if execute -%}
        {{ return(run_query('select count(*) from ' ~ touched).columns[0].values()[0] > 0) }}
    {%- endif -%}
    {{ return(true) }}
{%- endmacro %}

{#- A filter on events (batch_id, account_id): those of this run's batches, and every event of
    the touched accounts. -#}
{% macro in_metering_scope() -%}
    (batch_id > {{ metering_from_batch() }}
    {%- if any_touched_accounts() %}
     or account_id in (select account_id from {{ ref('int_touched_accounts') }})
    {%- endif %})
{%- endmacro %}

{#- A filter on a timestamp or date column that holds for every event and day of the days in
    int_recomputed_days (the cycles recomputed whole: their periods), so that the daily aggregates
    read only the row groups of the days a run recomputes: `column >= timestamp lo and column <
    timestamp hi` with literal bounds, `false` when no day is recomputed. On a full refresh every
    day is recomputed, and at parse time it renders `true`. -#}
{% macro within_recomputed_days(column) -%}
    {%- set cycles, days = ref('int_billing_cycles'), ref('int_recomputed_days') -%}
    {%- if execute and not flags.FULL_REFRESH -%}
        {%- set bounds = run_query(
            'select min(first_moment), max(end_moment) from ('
            ~ 'select min(usage_date) as first_moment, max(usage_date) + interval 1 day as end_moment from ' ~ days
            ~ ' union all select min(period_start_date), max(period_end_date) from ' ~ cycles
            ~ ' where cycle_id in (select cycle_id from ' ~ days ~ ' where usage_date is null)) as bounds').rows[0] -%}
        {%- if bounds[0] is none -%}
            false
        {%- else -%}
            {{ column }} >= timestamp '{{ bounds[0] }}' and {{ column }} < timestamp '{{ bounds[1] }}'
        {%- endif -%}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Whether a row's (cycle_id, day) is one int_recomputed_days names: the day itself, or every day
    of a cycle recomputed whole; on a full refresh, every day. Two semi-joins on equal keys: one
    correlated exists with `usage_date is null or usage_date = day` took 3 s over the 10M events of
    a run that recomputed every cycle whole, four times over in int_usage_daily, where these take
    0.7 s. -#}
{% macro is_recomputed_day(cycle_id, usage_date) -%}
    {%- set recomputed_days = ref('int_recomputed_days') -%}
    {%- if flags.FULL_REFRESH -%}
    true
    {%- else -%}
    ({{ cycle_id }} in (select cycle_id from {{ recomputed_days }} where usage_date is null)
     or ({{ cycle_id }}, {{ usage_date }}) in (select cycle_id, usage_date from {{ recomputed_days }}
                                               where usage_date is not null))
    {%- endif -%}
{%- endmacro %}

{#- A filter on events or days that keeps those of the days in int_recomputed_days: literal bounds
    on `moment` (an event's timestamp, or a day), which skip the row groups of other days, and then
    the (cycle, day) pairs themselves. -#}
{% macro on_recomputed_days(cycle_id, moment) -%}
    {{ within_recomputed_days(moment) }} and {{ is_recomputed_day(cycle_id, 'cast(' ~ moment ~ ' as date)') }}
{%- endmacro %}

{#- Before an incremental run of a daily model (int_usage_daily, int_distinct_values_daily)
    appends the recomputed days' rows: delete their rows from before, and every row of the
    touched accounts. -#}
{% macro delete_recomputed_days() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where ({{ on_recomputed_days(this.identifier ~ '.cycle_id', this.identifier ~ '.usage_date') }})
    {%- if any_touched_accounts() %}
       or account_id in (select account_id from {{ ref('int_touched_accounts') }})
    {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- Before an incremental run appends the recomputed cycles' rows: delete their rows from before,
    and every row of the touched accounts. -#}
{% macro delete_recomputed_rows() -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where cycle_id in (select cycle_id from {{ ref('int_recomputed_cycles') }})
    {%- if any_touched_accounts() %}
       or account_id in (select account_id from {{ ref('int_touched_accounts') }})
    {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- Before an incremental model of cycle rows appends the cycles it lacks: delete the rows of the
    cycles that are gone or whose `columns` (copied from int_billing_cycles) changed since they
    were written: a cycle closes when the run's date passes its end. -#}
{% macro delete_changed_cycles(columns) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where cycle_id in (
        select kept.cycle_id
        from {{ this }} as kept
        left join {{ ref('int_billing_cycles') }} as cycles on cycles.cycle_id = kept.cycle_id
        where cycles.cycle_id is null
        {%- for column in columns %}
           or kept.{{ column }} is distinct from cycles.{{ column }}
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}
