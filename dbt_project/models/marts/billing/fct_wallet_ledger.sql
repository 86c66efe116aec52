-- Wallet top-ups and the draws of final invoices, with each account's running balance (README).
-- Drafts show the wallet amount that would apply but draw nothing, so they are not here. A void's
-- credit note returns what the voided invoice drew (a restore, before that day's draws).
with topups as (

    select * from {{ ref('fct_wallet_topups') }}

),

draws as (

    select * from {{ ref('stg_billing__wallet_draws') }}

),

entries as (

    select account_id, 'topup' as entry_type, topup_date as entry_date, 0 as entry_order, topup_id as source_id,
           amount
    from topups

    union all

    select account_id, case when amount < 0 then 'restore' else 'draw' end, draw_date,
           case when amount < 0 then 1 else 2 end, invoice_id, -amount
    from draws

),

final as (

    select
        account_id || '/' || entry_type || '/' || source_id as ledger_entry_id,
        account_id,
        entry_type,
        entry_date,
        source_id,
        cast(amount as decimal(38, 18)) as amount,
        cast(sum(amount) over (
            partition by account_id order by entry_date, entry_order, source_id
            rows between unbounded preceding and current row
        ) as decimal(38, 18)) as balance_amount
    from entries

)

select * from final
