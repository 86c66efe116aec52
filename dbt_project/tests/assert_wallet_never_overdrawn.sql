{{ config(tags=['billing'], meta={'dagster': {'ref': {'name': 'fct_wallet_ledger'}}}) }}
-- No money is created by wallets: no account's wallet balance ever goes below zero.
select ledger_entry_id, balance_amount
from {{ ref('fct_wallet_ledger') }}
where balance_amount < 0
