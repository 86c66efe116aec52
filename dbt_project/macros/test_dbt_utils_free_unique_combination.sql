{#- A composite primary key: no two rows share these columns (dbt_utils' test, without the package,
    because packages would need a download at install time). -#}
{% test dbt_utils_free_unique_combination(model, columns) %}

select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
