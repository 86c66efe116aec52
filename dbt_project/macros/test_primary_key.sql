{#- A model's primary key: every row has one (no NULL) and no two rows share
    it. One query for both, so each model costs one test node per run. The keys' hashes are sorted
    and each compared with the one before, rather than grouped: DuckDB spills a sort of 100M keys
    within its memory limit, where a hash aggregate of 100M distinct keys ran out of memory; and a
    sort of 64-bit hashes costs a third of a sort of the text keys. Only the rows whose hash another
    row shares (a duplicate, or a rare collision) are then grouped on the key itself. -#}
{% test primary_key(model, column_name) %}
{{ primary_key_violations(model, column_name) }}
{% endtest %}

{#- The primary key of a daily model (int_usage_daily, int_distinct_values_daily), whose key holds
    its day, on the days this run recomputed (int_recomputed_days), read within literal bounds
    that skip the other days' row groups: the other days' rows are kept as they were when the run
    that wrote them tested them. A test of its own, since reading the recomputed days at run time
    makes it built every run, which the plain primary key of an unchanged model is not. -#}
{% test primary_key_of_recomputed_days(model, column_name) %}
{%- set recomputed -%}
    (select * from {{ model }} as keyed
     where {{ on_recomputed_days('keyed.cycle_id', 'keyed.usage_date') }})
{%- endset %}
{{ primary_key_violations(recomputed, column_name) }}
{% endtest %}

{% macro primary_key_violations(relation, column_name) %}

with ordered_hashes as (

    select key_hash, lag(key_hash) over (order by key_hash) as previous_hash
    from (select hash({{ column_name }}) as key_hash from {{ relation }})

),

shared_hashes as (

    select distinct key_hash
    from ordered_hashes
    where key_hash = previous_hash

)

select {{ column_name }}
from {{ relation }}
where hash({{ column_name }}) in (select key_hash from shared_hashes) or {{ column_name }} is null
group by {{ column_name }}
having count(*) > 1 or {{ column_name }} is null

{% endmacro %}
