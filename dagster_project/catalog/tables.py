"""The catalog as relational tables (config.*), for dbt to join and BI tools to read."""
from __future__ import annotations

import hashlib
import json

import pyarrow as pa

from dagster_project.catalog.filters import (
    DAILY_KEY_SQL,
    DAILY_MERGE_SQL,
    QUANTITY_SQL,
    meter_value_sql,
)
from dagster_project.catalog.loader import Catalog

_S, _I, _B = pa.string(), pa.int32(), pa.bool_()
WORK_DECIMAL = pa.decimal128(38, 18)


def _applies_to_text(applies_to) -> str:
    """`all`, or billable items joined with ';' as in credit_grants.csv."""
    return applies_to if applies_to == "all" else ";".join(applies_to)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def schemas_fingerprint(catalog: Catalog) -> str:
    """What the validation of every event depends on: a change re-meters every event."""
    return _digest([schema.model_dump(mode="json") for schema in catalog.event_schemas.values()])


def plan_fingerprint(catalog: Catalog, plan_name: str) -> str:
    """What metering an account on the plan depends on (its cycles, its meters with their compiled
    filters, its entitlements' limits): a change re-meters the accounts on the plan."""
    plan = catalog.price_plans[plan_name]
    meters = catalog.meters_of_plan(plan_name)
    return _digest({
        "billing_cycle": plan.billing_cycle.model_dump(mode="json"),
        "meters": [{**catalog.usage_meters[m].model_dump(mode="json"), "filter_sql": catalog.meter_filter_sql[m]}
                   for m in meters],
        "entitlements": [e.model_dump(mode="json") for e in plan.entitlements],
    })


def catalog_tables(catalog: Catalog) -> dict[str, pa.Table]:
    schemas = catalog.event_schemas.values()
    return {
        "event_schemas": _table({"schema_name": _S, "description": _S},
                                [(s.name, s.description) for s in schemas]),
        "event_schema_attributes": _table(
            {"schema_name": _S, "attribute_name": _S, "unit": _S, "is_required": _B},
            [(s.name, a.name, a.unit, a.required) for s in schemas for a in s.attributes]),
        "event_schema_dimensions": _table({"schema_name": _S, "dimension_name": _S},
                                          [(s.name, d) for s in schemas for d in s.dimensions]),
        "usage_meters": _table(
            {"meter_name": _S, "schema_name": _S, "aggregation": _S, "attribute_name": _S, "unique_by": _S,
             "value_sql": _S, "distinct_sql": _S, "filter_sql": _S, "quantity_sql": _S, "daily_merge_sql": _S,
             "daily_key_sql": _S},
            [(m.name, m.event_schema, m.aggregation, m.attribute, m.unique_by,
              *meter_value_sql(m.aggregation, m.attribute, m.unique_by), catalog.meter_filter_sql[m.name],
              QUANTITY_SQL[m.aggregation], DAILY_MERGE_SQL.get(m.aggregation),
              DAILY_KEY_SQL.get(m.aggregation)) for m in catalog.usage_meters.values()]),
        "billable_items": _table({"item_name": _S, "billable_name": _S, "item_type": _S, "meter_name": _S},
                                 [(i.name, i.billable_name, i.type, i.usage_meter)
                                  for i in catalog.billable_items.values()]),
        "price_plans": _table(
            {"plan_name": _S, "currency": _S, "interval_unit": _S, "interval_count": _I, "anchor": _S,
             "grace_period_days": _I, "metering_fingerprint": _S},
            [(p.name, p.currency, p.billing_cycle.interval, p.billing_cycle.interval_count, p.billing_cycle.anchor,
              p.grace_period_days, plan_fingerprint(catalog, p.name)) for p in catalog.price_plans.values()]),
        "plan_meters": _table({"plan_name": _S, "meter_name": _S},
                              [(plan, meter) for plan in catalog.price_plans
                               for meter in catalog.meters_of_plan(plan)]),
        "plan_credits": _table(
            {"plan_name": _S, "credit_number": _I, "amount": WORK_DECIMAL, "applies_to": _S, "expires": _S,
             "priority": _I},
            [(p.name, n, c.amount, _applies_to_text(c.applies_to), c.expires, c.priority)
             for p in catalog.price_plans.values() for n, c in enumerate(p.credits, start=1)]),
        "plan_entitlements": _table(
            {"plan_name": _S, "feature": _S, "billable_name": _S, "meter_name": _S, "usage_limit": WORK_DECIMAL},
            [(p.name, e.feature, catalog.billable_items[e.feature].billable_name,
              catalog.billable_items[e.feature].usage_meter, e.limit)
             for p in catalog.price_plans.values() for e in p.entitlements]),
        "catalog_version": _table({"fingerprint": _S, "schemas_fingerprint": _S},
                                  [(catalog.fingerprint, schemas_fingerprint(catalog))]),
    }


def _table(columns: dict[str, pa.DataType], rows: list[tuple]) -> pa.Table:
    return pa.table({name: pa.array([row[i] for row in rows], type=dtype)
                     for i, (name, dtype) in enumerate(columns.items())})
