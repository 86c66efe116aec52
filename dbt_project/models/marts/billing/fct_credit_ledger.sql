-- Every grant, draw and expiry of credits, with each grant's running balance (README).
-- Draws of draft invoices are what would be drawn (invoice_status = 'draft'); draws of final
-- invoices are permanent. A draw counts at its invoice's period end (the service it pays for,
-- always inside the grant's window) and is dated by its issue date; an expiry removes what is
-- left on the expiry date, once the run's date has reached it. A void's credit note returns what
-- the voided invoice drew (a restore, counted before the draws of the invoice issued in its place).
with grants as (

    select * from {{ ref('dim_credit_grants') }}

),

draws as (

    select * from {{ ref('stg_billing__credit_draws') }}

),

invoices as (

    select * from {{ ref('stg_billing__invoices') }}

),

drawn as (

    select grant_id, sum(amount) as drawn_amount from draws group by grant_id

),

entries as (

    select
        grant_id, account_id, 'grant' as entry_type, granted_date as entry_date, granted_date as effective_date,
        0 as entry_order, 0 as same_day_order, cast(null as varchar) as invoice_id,
        cast(null as varchar) as invoice_status, amount
    from grants

    union all

    select
        draws.grant_id, draws.account_id, case when draws.amount < 0 then 'restore' else 'draw' end,
        invoices.issue_date, invoices.period_end_date, 1, case when draws.amount < 0 then 0 else 1 end,
        draws.invoice_id, invoices.status, -draws.amount
    from draws
    inner join invoices on invoices.invoice_id = draws.invoice_id

    union all

    select
        grants.grant_id, grants.account_id, 'expiry', grants.expiry_date, grants.expiry_date,
        2, 0, null, null, -(grants.amount - coalesce(drawn.drawn_amount, 0))
    from grants
    left join drawn on drawn.grant_id = grants.grant_id
    where grants.expiry_date <= {{ as_of_date() }}
      and grants.amount - coalesce(drawn.drawn_amount, 0) > 0

),

final as (

    select
        grant_id || '/' || entry_type || '/' || coalesce(invoice_id, strftime(entry_date, '%Y-%m-%d'))
            as ledger_entry_id,
        grant_id,
        account_id,
        entry_type,
        entry_date,
        effective_date,
        invoice_id,
        invoice_status,
        cast(amount as decimal(38, 18)) as amount,
        cast(sum(amount) over (
            partition by grant_id order by effective_date, entry_order, entry_date, same_day_order, invoice_id
            rows between unbounded preceding and current row
        ) as decimal(38, 18)) as balance_amount
    from entries

)

select * from final
