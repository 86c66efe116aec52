-- Licenses held (README): each license_updates row holds from its effective date until the
-- account's next update of the same item; clipped to every cycle, as intervals of whole days.
-- Before the first update the quantity is 0, so those days have no interval.
with updates as (

    select * from {{ ref('stg_raw__license_updates') }}

),

cycles as (

    select * from {{ ref('int_billing_cycles') }}

),

held as (

    select
        account_id,
        billable_item,
        quantity,
        effective_date as held_from_date,
        lead(effective_date) over (
            partition by account_id, billable_item order by effective_date
        ) as held_until_date
    from updates

),

clipped as (

    select
        cycles.cycle_id,
        cycles.account_id,
        held.billable_item,
        held.quantity,
        greatest(held.held_from_date, cycles.period_start_date) as interval_start_date,
        least(coalesce(held.held_until_date, cycles.period_end_date), cycles.period_end_date) as interval_end_date
    from cycles
    inner join held
        on held.account_id = cycles.account_id
        and held.held_from_date < cycles.period_end_date
        and coalesce(held.held_until_date, cycles.period_end_date) > cycles.period_start_date

),

final as (

    select
        cycle_id || '/' || billable_item || '/' || strftime(interval_start_date, '%Y-%m-%d') as license_interval_id,
        cycle_id,
        account_id,
        billable_item,
        quantity,
        interval_start_date,
        interval_end_date,
        {{ dbt.datediff('interval_start_date', 'interval_end_date', 'day') }} as days
    from clipped
    where interval_start_date < interval_end_date

)

select * from final
