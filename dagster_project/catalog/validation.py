"""Rules that span fields and files: uniqueness, references, types, tiers, signs.

Each check reports (file, path, message). References to a kind whose file failed to parse are
not checked, so one broken file does not bury the real problem under consequences of it.
"""
from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel

from dagster_project.catalog.filters import parse_filter
from dagster_project.catalog.models import (
    BillableItem,
    EventSchema,
    PricePlan,
    UsageMeter,
    plan_meters,
)
from dagster_project.catalog.problems import BILLING_FILE, ConfigProblem
from dagster_project.catalog.rules import check_rules
from dagster_project.limits import decimal_problem

SCHEMAS_FILE = "event_schemas.yaml"
METERS_FILE = "usage_meters.yaml"
ITEMS_FILE = "billable_items.yaml"

# which rate card kind may price which billable item type
_RATE_CARD_TYPES = {"usage": ("usage", "named_license"), "licenses": ("license",), "fixed_fees": ("fixed_fee",)}


class _Report:
    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def add(self, file: str, path: str, message: str) -> None:
        self.problems.append(ConfigProblem(file, path, message))


def validate_catalog(parsed: dict, plans: dict[str, PricePlan | None]) -> list[ConfigProblem]:
    report = _Report()
    schemas_file, meters_file, items_file = parsed[SCHEMAS_FILE], parsed[METERS_FILE], parsed[ITEMS_FILE]

    schemas = _check_schemas(schemas_file.event_schemas, report) if schemas_file else None
    meters = _check_meters(meters_file.usage_meters, schemas, report) if meters_file else None
    items = _check_items(items_file.billable_items, meters, report) if items_file else None

    seen_plans: dict[str, str] = {}
    for rel, plan in plans.items():
        if plan is None:
            continue
        if plan.name in seen_plans:
            report.add(rel, "name", f"duplicate price plan name '{plan.name}' (also in {seen_plans[plan.name]})")
        seen_plans.setdefault(plan.name, rel)
        _check_plan(rel, plan, items, report)

    for rel, plan in plans.items():
        if plan is not None:
            _check_decimals(plan, rel, "", report)
    billing = parsed[BILLING_FILE]
    if billing is not None:
        _check_decimals(billing, BILLING_FILE, "", report)
        _unique([c.name for c in billing.custom_charges], BILLING_FILE, "custom_charges", "custom charge", report)
        for i, charge in enumerate(billing.custom_charges):
            _non_negative(charge.rate, BILLING_FILE, f"custom_charges[{i}].rate", report)
        _check_numbering_prefixes(billing, report)
        _check_email_login(billing, report)
    return report.problems


def _check_email_login(billing, report: _Report) -> None:
    """An SMTP login needs both variables, and is never sent in clear."""
    email = billing.delivery.email
    if email is None or (email.username_env is None and email.password_env is None):
        return
    if email.username_env is None or email.password_env is None:
        missing = "username_env" if email.username_env is None else "password_env"
        report.add(BILLING_FILE, f"delivery.email.{missing}", "a login needs both username_env and password_env")
    if not email.starttls:
        report.add(BILLING_FILE, "delivery.email.starttls", "must be true when the server needs a login: "
                                                            "the password would be sent in clear")


def _check_numbering_prefixes(billing, report: _Report) -> None:
    """Invoices, credit notes and debit notes are numbered in separate series: a shared prefix
    would give two documents the same number. Numbers name the files of notes and of invoices
    issued by a void, so a prefix holds no path separator."""
    seen: dict[str, str] = {}
    for field in ("invoice_numbering", "credit_note_numbering", "debit_note_numbering"):
        prefix = getattr(billing, field).prefix
        if "/" in prefix or "\\" in prefix:
            report.add(BILLING_FILE, f"{field}.prefix", f"'{prefix}' cannot hold / or \\ (numbers name files)")
        if prefix in seen:
            report.add(BILLING_FILE, f"{field}.prefix", f"'{prefix}' is already the prefix of {seen[prefix]}; "
                                                        "each series needs its own")
        seen.setdefault(prefix, field)


def _unique(names: list[str], file: str, list_path: str, kind: str, report: _Report) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            report.add(file, f"{list_path}[{i}].name", f"duplicate {kind} name '{name}'")
        seen.add(name)


def _check_decimals(value, file: str, path: str, report: _Report) -> None:
    """Every decimal of a parsed file within the supported range and scale (limits.py)."""
    if isinstance(value, Decimal):
        problem = decimal_problem(format(value, "f"))
        if problem:
            report.add(file, path, problem)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _check_decimals(getattr(value, name), file, f"{path}.{name}" if path else name, report)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_decimals(item, file, f"{path}[{i}]", report)


def _non_negative(value: Decimal | None, file: str, path: str, report: _Report) -> None:
    if value is not None and value < 0:
        report.add(file, path, "must not be negative")


def _check_schemas(schemas: list[EventSchema], report: _Report) -> dict[str, EventSchema]:
    _unique([s.name for s in schemas], SCHEMAS_FILE, "event_schemas", "event schema", report)
    for i, schema in enumerate(schemas):
        path = f"event_schemas[{i}]"
        _unique([a.name for a in schema.attributes], SCHEMAS_FILE, f"{path}.attributes", "attribute", report)
        seen: set[str] = set()
        for j, dim in enumerate(schema.dimensions):
            if dim in seen:
                report.add(SCHEMAS_FILE, f"{path}.dimensions[{j}]", f"duplicate dimension '{dim}'")
            if dim in {a.name for a in schema.attributes}:
                report.add(SCHEMAS_FILE, f"{path}.dimensions[{j}]", f"'{dim}' is also declared as an attribute")
            seen.add(dim)
    return {s.name: s for s in schemas}


def _check_meters(meters: list[UsageMeter], schemas: dict | None, report: _Report) -> dict[str, UsageMeter]:
    _unique([m.name for m in meters], METERS_FILE, "usage_meters", "usage meter", report)
    for i, meter in enumerate(meters):
        path = f"usage_meters[{i}]"
        schema = schemas.get(meter.event_schema) if schemas is not None else None
        if schemas is not None and schema is None:
            report.add(METERS_FILE, f"{path}.event_schema", f"unknown event schema '{meter.event_schema}'")
        attributes = {a.name for a in schema.attributes} if schema else None
        dimensions = set(schema.dimensions) if schema else None
        needs_attribute = meter.aggregation in ("SUM", "MAX", "LATEST")
        if needs_attribute and meter.attribute is None:
            report.add(METERS_FILE, f"{path}.attribute", f"is required for {meter.aggregation}")
        if not needs_attribute and meter.attribute is not None:
            report.add(METERS_FILE, f"{path}.attribute", f"is not used by {meter.aggregation}")
        if meter.attribute is not None and attributes is not None and meter.attribute not in attributes:
            report.add(METERS_FILE, f"{path}.attribute",
                       f"'{meter.attribute}' is not an attribute of event schema '{meter.event_schema}'")
        if meter.aggregation == "UNIQUE_COUNT":
            if meter.unique_by is None:
                report.add(METERS_FILE, f"{path}.unique_by", "is required for UNIQUE_COUNT")
            elif dimensions is not None and meter.unique_by not in dimensions:
                report.add(METERS_FILE, f"{path}.unique_by",
                           f"'{meter.unique_by}' is not a dimension of event schema '{meter.event_schema}'")
        elif meter.unique_by is not None:
            report.add(METERS_FILE, f"{path}.unique_by", f"is not used by {meter.aggregation}")
        if meter.filter is not None:
            _, errors = parse_filter(meter.filter, f"{path}.filter", dimensions, attributes)
            for where, message in errors:
                report.add(METERS_FILE, where, message)
    return {m.name: m for m in meters}


def compiled_filters(meters: dict[str, UsageMeter], schemas: dict[str, EventSchema]) -> dict:
    """Parsed filter trees of a valid catalog, by meter name."""
    out = {}
    for name, meter in meters.items():
        schema = schemas[meter.event_schema]
        node, _ = parse_filter(meter.filter, name, set(schema.dimensions), {a.name for a in schema.attributes}) \
            if meter.filter is not None else (None, [])
        out[name] = node
    return out


def _check_items(items: list[BillableItem], meters: dict | None, report: _Report) -> dict[str, BillableItem]:
    _unique([i.name for i in items], ITEMS_FILE, "billable_items", "billable item", report)
    for i, item in enumerate(items):
        path = f"billable_items[{i}].usage_meter"
        if item.type in ("usage", "named_license") and item.usage_meter is None:
            report.add(ITEMS_FILE, path, f"is required for a {item.type} item")
        if item.type in ("license", "fixed_fee") and item.usage_meter is not None:
            report.add(ITEMS_FILE, path, f"a {item.type} item has no usage meter")
        if item.usage_meter is None or meters is None:
            continue
        meter = meters.get(item.usage_meter)
        if meter is None:
            report.add(ITEMS_FILE, path, f"unknown usage meter '{item.usage_meter}'")
        elif item.type == "named_license" and meter.aggregation != "UNIQUE_COUNT":
            report.add(ITEMS_FILE, path, f"a named_license item needs a UNIQUE_COUNT meter, "
                                         f"'{item.usage_meter}' is {meter.aggregation}")
    return {i.name: i for i in items}


def _check_item_ref(name: str, allowed_types: tuple[str, ...], items: dict | None, rel: str, path: str,
                    report: _Report) -> BillableItem | None:
    if items is None:
        return None
    item = items.get(name)
    if item is None:
        report.add(rel, path, f"unknown billable item '{name}'")
    elif item.type not in allowed_types:
        report.add(rel, path, f"billable item '{name}' is of type {item.type}, expected {' or '.join(allowed_types)}")
    return item


def _check_applies_to(value, items: dict | None, rel: str, path: str, report: _Report) -> None:
    if value == "all":
        return
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        report.add(rel, path, "must be 'all' or a non-empty list of billable items")
        return
    for j, name in enumerate(value):
        if items is not None and name not in items:
            report.add(rel, f"{path}[{j}]", f"unknown billable item '{name}'")


def _check_plan(rel: str, plan: PricePlan, items: dict | None, report: _Report) -> None:
    priced: dict[str, str] = {}
    for kind, cards in (("usage", plan.rate_cards.usage), ("licenses", plan.rate_cards.licenses),
                        ("fixed_fees", plan.rate_cards.fixed_fees)):
        for i, card in enumerate(cards):
            path = f"rate_cards.{kind}[{i}]"
            _check_item_ref(card.billable_item, _RATE_CARD_TYPES[kind], items, rel, f"{path}.billable_item", report)
            if card.billable_item in priced:
                report.add(rel, f"{path}.billable_item",
                           f"billable item '{card.billable_item}' is already priced at {priced[card.billable_item]}")
            priced.setdefault(card.billable_item, path)
            if kind == "usage":
                _check_usage_card(card, rel, path, report)
            elif kind == "licenses":
                _non_negative(card.unit_price, rel, f"{path}.unit_price", report)
            else:
                _non_negative(card.amount, rel, f"{path}.amount", report)

    for i, credit in enumerate(plan.credits):
        if credit.amount <= 0:
            report.add(rel, f"credits[{i}].amount", "must be greater than 0")
        _check_applies_to(credit.applies_to, items, rel, f"credits[{i}].applies_to", report)
    if plan.minimum_commitment is not None:
        _non_negative(plan.minimum_commitment.amount, rel, "minimum_commitment.amount", report)
        _check_applies_to(plan.minimum_commitment.applies_to, items, rel, "minimum_commitment.applies_to", report)

    features: set[str] = set()
    for i, ent in enumerate(plan.entitlements):
        path = f"entitlements[{i}]"
        item = _check_item_ref(ent.feature, ("feature",), items, rel, f"{path}.feature", report)
        if ent.feature in features:
            report.add(rel, f"{path}.feature", f"duplicate entitlement '{ent.feature}'")
        features.add(ent.feature)
        if item is None or item.type != "feature":
            continue
        if item.usage_meter is not None and ent.limit is None:
            report.add(rel, f"{path}.limit", f"is required: feature '{ent.feature}' is metered")
        if item.usage_meter is None and ent.limit is not None:
            report.add(rel, f"{path}.limit", f"feature '{ent.feature}' has no usage meter to limit")
        _non_negative(ent.limit, rel, f"{path}.limit", report)

    for path, message in check_rules(plan, items, plan_meters(plan, items) if items is not None else None):
        report.add(rel, path, message)


def _check_usage_card(card, rel: str, path: str, report: _Report) -> None:
    for name in ("unit_price", "package_price", "rate", "fixed_fee_per_event", "minimum_amount", "maximum_amount"):
        _non_negative(getattr(card, name, None), rel, f"{path}.{name}", report)
    if card.minimum_amount is not None and card.maximum_amount is not None \
            and card.minimum_amount > card.maximum_amount:
        report.add(rel, f"{path}.maximum_amount", f"must not be less than minimum_amount ({card.minimum_amount})")
    if card.model == "package":
        if card.package_size <= 0:
            report.add(rel, f"{path}.package_size", "must be greater than 0")
        _non_negative(card.free_units, rel, f"{path}.free_units", report)
    if card.model in ("tiered", "volume"):
        _check_tiers(card.tiers, rel, f"{path}.tiers", report)


def _check_tiers(tiers, rel: str, path: str, report: _Report) -> None:
    if not tiers:
        report.add(rel, path, "must have at least one tier")
        return
    previous: Decimal | None = None
    for i, tier in enumerate(tiers):
        _non_negative(tier.unit_price, rel, f"{path}[{i}].unit_price", report)
        _non_negative(tier.flat_fee, rel, f"{path}[{i}].flat_fee", report)
        last = i == len(tiers) - 1
        if tier.up_to is None:
            if not last:
                report.add(rel, f"{path}[{i}].up_to", "only the last tier may be open-ended (up_to: null)")
            continue
        if last:
            report.add(rel, f"{path}[{i}].up_to", "the last tier must be open-ended (up_to: null)")
        if previous is None and tier.up_to <= 0:
            report.add(rel, f"{path}[{i}].up_to", "must be greater than 0")
        if previous is not None and tier.up_to <= previous:
            report.add(rel, f"{path}[{i}].up_to",
                       f"must be greater than the previous tier's up_to ({format(previous, 'f')})")
        previous = tier.up_to
