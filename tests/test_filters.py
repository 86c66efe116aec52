"""Meter filters compiled to SQL and evaluated by DuckDB on events with and without the field."""
from __future__ import annotations

import duckdb
import pytest

from dagster_project.catalog.filters import compile_filter, parse_filter

# Events: a debit card payment of 120.5, an ACH payment of 40, and one with neither field.
EVENTS = """
select * from (values
    (1, map(['payment_mode'], ['debit_card']), map(['amount'], ['120.5'])),
    (2, map(['payment_mode'], ['ach']), map(['amount'], ['40'])),
    (3, cast(map() as map(varchar, varchar)), cast(map() as map(varchar, varchar)))
) as events(id, dimensions, attributes)
"""


def matching_ids(raw_filter) -> list[int]:
    node, errors = parse_filter(raw_filter, "filter", {"payment_mode"}, {"amount"})
    assert errors == []
    sql = f"select id from ({EVENTS}) where {compile_filter(node)} order by id"
    return [row[0] for row in duckdb.sql(sql).fetchall()]


@pytest.mark.parametrize("condition, expected", [
    ({"dimension": "payment_mode", "op": "eq", "value": "debit_card"}, [1]),
    ({"dimension": "payment_mode", "op": "neq", "value": "debit_card"}, [2, 3]),  # missing: true
    ({"dimension": "payment_mode", "op": "in", "value": ["ach", "wire"]}, [2]),
    ({"dimension": "payment_mode", "op": "not_in", "value": ["ach"]}, [1, 3]),  # missing: true
    ({"attribute": "amount", "op": "gt", "value": 40}, [1]),
    ({"attribute": "amount", "op": "gte", "value": 40}, [1, 2]),
    ({"attribute": "amount", "op": "lt", "value": "120.5"}, [2]),
    ({"attribute": "amount", "op": "lte", "value": "120.5"}, [1, 2]),
    ({"attribute": "amount", "op": "eq", "value": "40.00"}, [2]),  # numeric, not textual, equality
    ({"attribute": "amount", "op": "exists"}, [1, 2]),
    ({"attribute": "amount", "op": "not_exists"}, [3]),
    ({"dimension": "payment_mode", "op": "exists"}, [1, 2]),
])
def test_each_operator_and_its_missing_value_rule(condition, expected):
    assert matching_ids(condition) == expected


def test_a_condition_on_a_missing_field_is_false_even_under_not():
    # eq on a missing dimension is false, so its negation is true for the event without it
    assert matching_ids({"not": {"dimension": "payment_mode", "op": "eq", "value": "ach"}}) == [1, 3]


def test_all_any_not_compose():
    tree = {"all": [
        {"any": [{"dimension": "payment_mode", "op": "eq", "value": "debit_card"},
                 {"attribute": "amount", "op": "lt", "value": 50}]},
        {"not": {"attribute": "amount", "op": "gt", "value": 100}},
    ]}
    assert matching_ids(tree) == [2]
    assert matching_ids({"all": []}) == [1, 2, 3]
    assert matching_ids({"any": []}) == []


def test_values_are_quoted_safely():
    assert matching_ids({"dimension": "payment_mode", "op": "eq", "value": "it's'; drop table x; --"}) == []
