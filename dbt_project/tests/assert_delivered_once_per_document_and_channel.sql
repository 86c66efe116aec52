{{ config(tags=['delivery'], meta={'dagster': {'ref': {'name': 'delivery_log'}}}) }}
-- A document is delivered at most once per channel, and every attempt carries the same
-- idempotency key (so that a receiver can drop a repeat).
select invoice_id, channel
from {{ ref('delivery_log') }}
group by invoice_id, channel
having count(*) filter (where status = 'delivered') > 1
    or count(distinct idempotency_key) > 1
