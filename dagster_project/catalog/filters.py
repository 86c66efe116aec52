"""Usage meter filters: parse the all/any/not tree with precise error paths, compile it to SQL.

The compiled SQL is pasted into the dbt metering model at execution time (never at parse time),
so changing pricing_config/ never needs a dbt re-parse, and dbt's target/ shows the exact SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from dagster_project.limits import METER_DECIMAL, decimal_problem

OPERATORS = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "not_exists")
_LIST_OPERATORS = ("in", "not_in")
_VALUELESS_OPERATORS = ("exists", "not_exists")
# On a missing dimension or attribute a condition is false, except these (README).
_TRUE_WHEN_MISSING = ("neq", "not_in", "not_exists")
_SQL_COMPARISON = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Condition:
    field_kind: str  # "dimension" | "attribute"
    name: str
    op: str
    value: str | Decimal | tuple | None


@dataclass(frozen=True)
class AllOf:
    children: tuple


@dataclass(frozen=True)
class AnyOf:
    children: tuple


@dataclass(frozen=True)
class NotOf:
    child: object


FilterNode = Condition | AllOf | AnyOf | NotOf


def parse_filter(raw, path: str, dimensions: set[str] | None, attributes: set[str] | None):
    """Parse a raw filter tree. Returns (node or None, [(path, message)]).

    `dimensions`/`attributes` are the meter schema's declared names, or None when the schema is
    unknown (then names are not checked, to avoid a cascade of messages from one mistake).
    """
    errors: list[tuple[str, str]] = []
    node = _parse_node(raw, path, dimensions, attributes, errors)
    return (node if not errors else None), errors


def _parse_node(raw, path, dimensions, attributes, errors):
    if not isinstance(raw, dict):
        errors.append((path, "must be a mapping with all, any, not, or a condition"))
        return None
    combinators = [k for k in ("all", "any", "not") if k in raw]
    if combinators:
        if len(raw) != 1:
            errors.append((path, f"'{combinators[0]}' must be the only key of its mapping"))
            return None
        key = combinators[0]
        if key == "not":
            return NotOf(_parse_node(raw["not"], f"{path}.not", dimensions, attributes, errors))
        items = raw[key]
        if not isinstance(items, list):
            errors.append((f"{path}.{key}", "must be a list"))
            return None
        children = tuple(
            _parse_node(item, f"{path}.{key}[{i}]", dimensions, attributes, errors)
            for i, item in enumerate(items)
        )
        return AllOf(children) if key == "all" else AnyOf(children)
    return _parse_condition(raw, path, dimensions, attributes, errors)


def _parse_condition(raw, path, dimensions, attributes, errors):
    unknown = sorted(set(raw) - {"dimension", "attribute", "op", "value"})
    for key in unknown:
        errors.append((f"{path}.{key}", "unknown key"))
    has_dim, has_attr = "dimension" in raw, "attribute" in raw
    if has_dim == has_attr:
        errors.append((path, "a condition names exactly one of dimension or attribute"))
        return None
    field_kind = "dimension" if has_dim else "attribute"
    name = raw[field_kind]
    declared = dimensions if has_dim else attributes
    if declared is not None and name not in declared:
        errors.append((f"{path}.{field_kind}", f"'{name}' is not a {field_kind} of the meter's event schema"))
    op = raw.get("op")
    if op not in OPERATORS:
        errors.append((f"{path}.op", f"must be one of {', '.join(OPERATORS)}"))
        return None
    value = raw.get("value")
    if op in _VALUELESS_OPERATORS:
        if "value" in raw:
            errors.append((f"{path}.value", f"{op} takes no value"))
        return Condition(field_kind, name, op, None)
    if "value" not in raw:
        errors.append((f"{path}.value", "is required"))
        return None
    if op in _LIST_OPERATORS:
        if not isinstance(value, list) or not value:
            errors.append((f"{path}.value", f"{op} takes a non-empty list"))
            return None
        parsed = tuple(_literal(v, field_kind, f"{path}.value[{i}]", errors) for i, v in enumerate(value))
        return Condition(field_kind, name, op, parsed)
    if isinstance(value, list):
        errors.append((f"{path}.value", f"{op} takes a single value, not a list"))
        return None
    return Condition(field_kind, name, op, _literal(value, field_kind, f"{path}.value", errors))


def _literal(value, field_kind, path, errors):
    if field_kind == "attribute":
        if isinstance(value, bool):
            errors.append((path, "must be a number"))
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            errors.append((path, "must be a number"))
            return None
        if not number.is_finite():
            errors.append((path, "must be a finite number"))
            return None
        problem = decimal_problem(format(number, "f"))
        if problem:
            errors.append((path, problem))
            return None
        return number
    if isinstance(value, (dict, list)) or value is None:
        errors.append((path, "must be a string"))
        return None
    return str(value) if not isinstance(value, Decimal) else format(value, "f")


# --- compilation -----------------------------------------------------------------------------------

def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_decimal(number: Decimal) -> str:
    return f"cast('{format(number, 'f')}' as {METER_DECIMAL})"


def attribute_sql(name: str) -> str:
    """The attribute's exact decimal value in the metering model (NULL when absent)."""
    return f"cast(attributes[{sql_string(name)}] as {METER_DECIMAL})"


def dimension_sql(name: str) -> str:
    return f"dimensions[{sql_string(name)}]"


def meter_value_sql(aggregation: str, attribute: str | None, unique_by: str | None) -> tuple[str, str]:
    """(decimal value, distinct value) SQL of one event for a meter; NULL means it contributes nothing."""
    if aggregation == "COUNT":
        return f"cast(1 as {METER_DECIMAL})", "cast(null as varchar)"
    if aggregation == "UNIQUE_COUNT":
        return f"cast(null as {METER_DECIMAL})", dimension_sql(unique_by)
    return attribute_sql(attribute), "cast(null as varchar)"


# What a meter's quantity is, over its events' values (README), defined once: dbt aggregates a
# day (int_usage_daily) and a cycle (int_meter_usage) with it, the entitlement crossings run it as
# a window ({window}: " over <window>"), and `tally entitlements` counts up to a moment with it.
QUANTITY_SQL = {
    "COUNT": f"cast(count(*){{window}} as {METER_DECIMAL})",
    "SUM": "coalesce(sum(meter_value){window}, 0)",
    "MAX": "coalesce(max(meter_value){window}, 0)",
    "UNIQUE_COUNT": f"cast(count(distinct distinct_value){{window}} as {METER_DECIMAL})",
    "LATEST": "coalesce(arg_max(meter_value, (event_at, event_id)){window}, 0)",  # ties: the greatest id
}

# The cycle's quantity from its days' rows (int_usage_daily), for the rules whose partial results
# merge exactly: int_meter_usage reads these meters from the daily aggregates, not from the events
# again, and a daily run aggregates only the days its events fall on. A LATEST day keeps the key of
# its latest event (DAILY_KEY_SQL), so the cycle's value is that of the day holding the cycle's
# latest event: QUANTITY_SQL's arg_max over the events, taken in two steps. UNIQUE_COUNT has none (a
# value seen on two days counts once): its QUANTITY_SQL counts the distinct values the cycle's days
# keep (int_distinct_values_daily).
DAILY_MERGE_SQL = {
    "COUNT": "sum(quantity)",
    "SUM": "sum(quantity)",
    "MAX": "max(quantity)",
    "LATEST": "coalesce(arg_max(quantity, (latest_event_at, latest_event_id)), 0)",
}

# What a day's row keeps beside its quantity for DAILY_MERGE_SQL (columns latest_event_at and
# latest_event_id): for LATEST, the key (event_at, event_id) of the event QUANTITY_SQL's arg_max
# takes. Every event a LATEST meter counts has a value (meter_value_list), so that is the day's
# greatest key. The other rules' days keep nulls (macro no_daily_key_columns).
DAILY_KEY_SQL = {
    "LATEST": "max(event_at) as latest_event_at, arg_max(event_id, (event_at, event_id)) as latest_event_id",
}


def meter_quantity_sql(aggregation: str, window: str = "") -> str:
    """The quantity of a meter's events (columns meter_value, distinct_value, event_at, event_id)."""
    return QUANTITY_SQL[aggregation].replace("{window}", window)


def compile_filter(node: FilterNode | None) -> str:
    """SQL boolean expression (DuckDB dialect) that is never NULL."""
    if node is None:
        return "true"
    if isinstance(node, AllOf):
        return "(" + " and ".join(compile_filter(c) for c in node.children) + ")" if node.children else "true"
    if isinstance(node, AnyOf):
        return "(" + " or ".join(compile_filter(c) for c in node.children) + ")" if node.children else "false"
    if isinstance(node, NotOf):
        return f"(not {compile_filter(node.child)})"
    return _compile_condition(node)


def _compile_condition(cond: Condition) -> str:
    column = dimension_sql(cond.name) if cond.field_kind == "dimension" else attribute_sql(cond.name)
    literal = sql_string if cond.field_kind == "dimension" else sql_decimal
    if cond.op == "exists":
        return f"({column} is not null)"
    if cond.op == "not_exists":
        return f"({column} is null)"
    if cond.op in _LIST_OPERATORS:
        keyword = "in" if cond.op == "in" else "not in"
        expression = f"{column} {keyword} ({', '.join(literal(v) for v in cond.value)})"
    else:
        expression = f"{column} {_SQL_COMPARISON[cond.op]} {literal(cond.value)}"
    missing = "true" if cond.op in _TRUE_WHEN_MISSING else "false"
    return f"coalesce({expression}, {missing})"
