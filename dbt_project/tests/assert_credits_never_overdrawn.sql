{{ config(tags=['billing'], meta={'dagster': {'ref': {'name': 'fct_credit_ledger'}}}) }}
-- No money is created by credits: no grant's balance ever goes below zero.
select ledger_entry_id, balance_amount
from {{ ref('fct_credit_ledger') }}
where balance_amount < 0
