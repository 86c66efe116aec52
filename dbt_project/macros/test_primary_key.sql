{#- A model's primary key: every row has one (no NULL in any of its columns) and no two rows share
    it. One query for both, so each model costs one test node per run. -#}
{% test primary_key(model, column_name=none, columns=none) %}

{%- set key = columns if columns else [column_name] %}
select {{ key | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ key | join(', ') }}
having count(*) > 1 or {% for column in key %}{{ column }} is null{% if not loop.last %} or {% endif %}{% endfor %}

{% endtest %}
