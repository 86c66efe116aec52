{#- A model's primary key: every row has one (no NULL in any of its columns) and no two rows share
    it. One query for both, so each model costs one test node per run. The rows are sorted by the
    key and each compared with the one before, rather than grouped: DuckDB spills a sort of 100M
    keys within its memory limit, where a hash aggregate of 100M distinct keys ran out of memory. -#}
{% test primary_key(model, column_name=none, columns=none) %}

{%- set key = columns if columns else [column_name] %}
with ordered as (

    select
        {% for column in key %}{{ column }}, lag({{ column }}) over by_key as previous_{{ loop.index }},
        {% endfor %}row_number() over by_key as position
    from {{ model }}
    window by_key as (order by {{ key | join(', ') }})

)

select {{ key | join(', ') }}
from ordered
where (position > 1{% for column in key %} and {{ column }} is not distinct from previous_{{ loop.index }}{% endfor %})
   or {% for column in key %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}

{% endtest %}
