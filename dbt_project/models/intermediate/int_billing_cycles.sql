-- Billing cycles [start, end) in whole UTC days, from each plan assignment (README).
-- Cycle k's boundaries are computed from the grid origin (never from the previous boundary), so
-- adding months keeps the anchor day, clamped to the month's end: Jan 31 -> Feb 28 -> Mar 31.
-- `assignment` anchors the grid on the start date; `calendar` on the start of the calendar unit
-- (1st of month/quarter/year, Monday for weeks), which makes cycle 0 partial. An assignment end
-- cuts its last cycle short. Cycles are generated through int_metering_scope's horizon: the day
-- after as_of (so the cycle that starts on as_of exists: its in-advance fees are on the invoice
-- closing the previous cycle) and the last event's day.
with assignments as (

    select * from {{ ref('stg_raw__plan_assignments') }}

),

plans as (

    select * from {{ ref('stg_config__price_plans') }}

),

horizon as (

    select horizon_date from {{ ref('int_metering_scope') }}

),

schedules as (

    select
        assignments.assignment_id,
        assignments.account_id,
        assignments.price_plan,
        assignments.start_date as assignment_start_date,
        assignments.end_date as assignment_end_date,
        plans.currency,
        plans.grace_period_days,
        case plans.interval_unit
            when 'month' then plans.interval_count
            when 'quarter' then 3 * plans.interval_count
            when 'year' then 12 * plans.interval_count
            else 0
        end as step_months,
        case plans.interval_unit
            when 'day' then plans.interval_count
            when 'week' then 7 * plans.interval_count
            else 0
        end as step_days,
        case
            when plans.anchor = 'assignment' or plans.interval_unit = 'day' then assignments.start_date
            else cast(date_trunc(plans.interval_unit, assignments.start_date) as date)
        end as grid_origin_date,
        least(coalesce(assignments.end_date, horizon.horizon_date), horizon.horizon_date) as generate_until_date
    from assignments
    inner join plans on plans.plan_name = assignments.price_plan
    cross join horizon
    where assignments.start_date < horizon.horizon_date

),

counted as (

    select
        *,
        case
            when step_months > 0
                then {{ dbt.datediff('grid_origin_date', 'generate_until_date', 'month') }} // step_months + 1
            else {{ dbt.datediff('grid_origin_date', 'generate_until_date', 'day') }} // step_days + 1
        end as cycle_count
    from schedules

),

numbered as (

    select
        *,
        unnest(generate_series(0, cycle_count)) as cycle_index
    from counted

),

bounded as (

    select
        *,
        case
            when step_months > 0
                then cast({{ dbt.dateadd('month', 'cycle_index * step_months', 'grid_origin_date') }} as date)
            else cast({{ dbt.dateadd('day', 'cycle_index * step_days', 'grid_origin_date') }} as date)
        end as full_period_start_date,
        case
            when step_months > 0
                then cast({{ dbt.dateadd('month', '(cycle_index + 1) * step_months', 'grid_origin_date') }} as date)
            else cast({{ dbt.dateadd('day', '(cycle_index + 1) * step_days', 'grid_origin_date') }} as date)
        end as full_period_end_date
    from numbered

),

clipped as (

    select
        *,
        greatest(full_period_start_date, assignment_start_date) as period_start_date,
        least(full_period_end_date, coalesce(assignment_end_date, full_period_end_date)) as period_end_date
    from bounded

),

final as (

    select
        account_id || '/' || strftime(period_start_date, '%Y-%m-%d') as cycle_id,
        assignment_id,
        account_id,
        price_plan,
        currency,
        cycle_index,
        period_start_date,
        period_end_date,
        full_period_start_date,
        full_period_end_date,
        {{ dbt.datediff('period_start_date', 'period_end_date', 'day') }} as period_days,
        {{ dbt.datediff('full_period_start_date', 'full_period_end_date', 'day') }} as full_period_days,
        assignment_start_date,
        assignment_end_date,
        grace_period_days,
        cast({{ dbt.dateadd('day', 'grace_period_days', 'period_end_date') }} as date) as issue_date,
        period_end_date <= {{ as_of_date() }} as is_closed
    from clipped
    where period_start_date < period_end_date
      and period_start_date < generate_until_date

)

select * from final
