{#- A model's primary key: every row has one (no NULL) and no two rows share
    it. One query for both, so each model costs one test node per run. The keys' hashes are sorted
    and each compared with the one before, rather than grouped: DuckDB spills a sort of 100M keys
    within its memory limit, where a hash aggregate of 100M distinct keys ran out of memory; and a
    sort of 64-bit hashes costs a third of a sort of the text keys. Only the rows whose hash another
    row shares (a duplicate, or a rare collision) are then grouped on the key itself. -#}
{% test primary_key(model, column_name) %}

with ordered_hashes as (

    select key_hash, lag(key_hash) over (order by key_hash) as previous_hash
    from (select hash({{ column_name }}) as key_hash from {{ model }})

),

shared_hashes as (

    select distinct key_hash
    from ordered_hashes
    where key_hash = previous_hash

)

select {{ column_name }}
from {{ model }}
where hash({{ column_name }}) in (select key_hash from shared_hashes) or {{ column_name }} is null
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null

{% endtest %}
