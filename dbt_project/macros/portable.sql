{#-
    The DuckDB-only SQL of the project, behind dispatchable macros: to run the models on another
    engine (Spark through dbt-spark is the next step), implement these for its adapter
    (`spark__list_where`, ...). The README lists them. The meter SQL compiled in Python
    (dagster_project/catalog/filters.py) uses MAP access and arg_max (LATEST) too.
-#}

{#- Keep the elements of a list for which a predicate over `x` holds. -#}
{% macro list_where(list, predicate) -%}
    {{ return(adapter.dispatch('list_where', 'tally')(list, predicate)) }}
{%- endmacro %}
{% macro duckdb__list_where(list, predicate) -%}
    list_filter({{ list }}, lambda x: {{ predicate }})
{%- endmacro %}

{#- Whether a predicate over `x` holds for every element of a list (true for an empty list). -#}
{% macro list_all(list, predicate) -%}
    {{ return(adapter.dispatch('list_all', 'tally')(list, predicate)) }}
{%- endmacro %}
{% macro duckdb__list_all(list, predicate) -%}
    coalesce(list_bool_and(list_transform({{ list }}, lambda x: {{ predicate }})), true)
{%- endmacro %}

{#- Map each element `x` of a list through an expression. -#}
{% macro list_map(list, expression) -%}
    {{ return(adapter.dispatch('list_map', 'tally')(list, expression)) }}
{%- endmacro %}
{% macro duckdb__list_map(list, expression) -%}
    list_transform({{ list }}, lambda x: {{ expression }})
{%- endmacro %}

{#- The keys of a MAP column, and a value by key. -#}
{% macro map_keys_of(map) -%}
    {{ return(adapter.dispatch('map_keys_of', 'tally')(map)) }}
{%- endmacro %}
{% macro duckdb__map_keys_of(map) -%}
    map_keys({{ map }})
{%- endmacro %}
{% macro map_values_of(map) -%}
    {{ return(adapter.dispatch('map_values_of', 'tally')(map)) }}
{%- endmacro %}
{% macro duckdb__map_values_of(map) -%}
    map_values({{ map }})
{%- endmacro %}
{% macro map_value(map, key) -%}
    {{ return(adapter.dispatch('map_value', 'tally')(map, key)) }}
{%- endmacro %}
{% macro duckdb__map_value(map, key) -%}
    {{ map }}[{{ key }}]
{%- endmacro %}

{#- A struct literal from (name, expression) pairs, and an empty list of such structs. -#}
{% macro struct_of(fields) -%}
    {{ return(adapter.dispatch('struct_of', 'tally')(fields)) }}
{%- endmacro %}
{% macro duckdb__struct_of(fields) -%}
    { {%- for name, expression in fields %}'{{ name }}': {{ expression }}{% if not loop.last %}, {% endif %}{% endfor -%} }
{%- endmacro %}

{#- Written after `as` of a CTE that is read more than once and is to be inlined into each read:
    DuckDB materializes such a CTE, which for the meter values of 100M events means writing them
    all to its temp directory first. -#}
{% macro inlined_cte() -%}
    {{ return(adapter.dispatch('inlined_cte', 'tally')()) }}
{%- endmacro %}
{% macro duckdb__inlined_cte() -%}
    not materialized
{%- endmacro %}
{% macro default__inlined_cte() -%}
{%- endmacro %}
