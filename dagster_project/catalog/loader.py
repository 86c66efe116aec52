"""Load pricing_config/ into a validated Catalog, or raise ConfigError listing every problem.

Every problem reads `file: path.to.field: message`, with the file relative to the config dir.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from dagster_project.catalog.filters import compile_filter
from dagster_project.catalog.models import (
    USAGE_MODELS,
    BillableItem,
    BillableItemsFile,
    BillingSettings,
    EventSchema,
    EventSchemasFile,
    PricePlan,
    UsageMeter,
    UsageMetersFile,
    plan_meters,
)
from dagster_project.catalog.problems import BILLING_FILE, ConfigError, ConfigProblem
from dagster_project.catalog.validation import compiled_filters, validate_catalog
from dagster_project.catalog.yaml_files import YamlFileError, load_yaml

# The list files may be absent (a company without usage has no meters); billing.yaml may not.
LIST_FILES = {
    "event_schemas.yaml": EventSchemasFile,
    "usage_meters.yaml": UsageMetersFile,
    "billable_items.yaml": BillableItemsFile,
}
PLANS_DIR = "price_plans"


@dataclass(frozen=True)
class Catalog:
    """The validated pricing configuration, keyed by name in file order."""

    event_schemas: dict[str, EventSchema]
    usage_meters: dict[str, UsageMeter]
    billable_items: dict[str, BillableItem]
    price_plans: dict[str, PricePlan]
    billing: BillingSettings
    meter_filter_sql: dict[str, str]
    fingerprint: str
    plan_files: dict[str, str] = field(default_factory=dict)

    def meters_of_plan(self, plan_name: str) -> list[str]:
        return plan_meters(self.price_plans[plan_name], self.billable_items)


_LOADED: dict[Path, tuple[tuple, Catalog]] = {}


def load_catalog_once(config_dir: Path | str) -> Catalog:
    """load_catalog, read and validated once for as long as the files stay the same: every step of
    a run asks for the catalog, and a run in-process should not parse and validate it each time.
    A file that changed (size or modification time) is read again; problems are never cached."""
    config_dir = Path(config_dir).resolve()
    signature = _files_signature(config_dir)
    cached = _LOADED.get(config_dir)
    if cached is not None and cached[0] == signature:
        return cached[1]
    catalog = load_catalog(config_dir)
    _LOADED[config_dir] = (signature, catalog)
    return catalog


def _files_signature(config_dir: Path) -> tuple:
    if not config_dir.is_dir():
        return ()
    return tuple(sorted((str(path), stat.st_size, stat.st_mtime_ns)
                        for path in config_dir.rglob("*") if path.is_file() for stat in [path.stat()]))


def load_catalog(config_dir: Path | str) -> Catalog:
    config_dir = Path(config_dir)
    problems: list[ConfigProblem] = []
    if not config_dir.is_dir():
        raise ConfigError([ConfigProblem(str(config_dir), "", "configuration directory not found")])

    parsed: dict[str, BaseModel | None] = {}
    for name, model in LIST_FILES.items():
        path = config_dir / name
        parsed[name] = _parse_file(path, name, model, problems, required=False)
    parsed[BILLING_FILE] = _parse_file(config_dir / BILLING_FILE, BILLING_FILE, BillingSettings, problems,
                                       required=True)
    plans: dict[str, PricePlan | None] = {}
    plan_dir = config_dir / PLANS_DIR
    plan_paths = sorted(plan_dir.glob("*.yaml")) + sorted(plan_dir.glob("*.yml")) if plan_dir.is_dir() else []
    for path in plan_paths:
        rel = f"{PLANS_DIR}/{path.name}"
        plans[rel] = _parse_file(path, rel, PricePlan, problems, required=True)

    problems += validate_catalog(parsed, plans)
    if problems:
        raise ConfigError(problems)

    schemas = {s.name: s for s in parsed["event_schemas.yaml"].event_schemas}
    meters = {m.name: m for m in parsed["usage_meters.yaml"].usage_meters}
    return Catalog(
        event_schemas=schemas,
        usage_meters=meters,
        billable_items={i.name: i for i in parsed["billable_items.yaml"].billable_items},
        price_plans={p.name: p for p in plans.values()},
        billing=parsed[BILLING_FILE],
        meter_filter_sql={name: compile_filter(node) for name, node in compiled_filters(meters, schemas).items()},
        fingerprint=_fingerprint(config_dir, [*LIST_FILES, BILLING_FILE], plan_paths),
        plan_files={p.name: rel for rel, p in plans.items()},
    )


def _parse_file(path: Path, rel: str, model: type[BaseModel], problems: list[ConfigProblem], required: bool):
    if not path.exists():
        if required:
            problems.append(ConfigProblem(rel, "", "file not found"))
            return None
        return model()
    try:
        raw = load_yaml(path)
    except YamlFileError as exc:
        problems.append(ConfigProblem(rel, exc.where, exc.message))
        return None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(rel, "", "must be a YAML mapping"))
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(ConfigProblem(rel, *_describe(err)))
        return None


def _describe(err: dict) -> tuple[str, str]:
    """A pydantic error as (field path, plain message)."""
    loc = list(err["loc"])
    kind = err["type"]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return _format_loc(loc + ["model"]), f"must be one of {', '.join(USAGE_MODELS)}"
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "is required"
    elif kind == "string_pattern_mismatch":
        message = "must be a name matching [a-z][a-z0-9_]*"
    elif kind == "literal_error":
        message = f"must be one of {ctx.get('expected', '').replace(' or ', ', ')}".replace("'", "")
    elif kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
    elif kind.startswith("decimal"):
        message = "must be a decimal number"
    else:
        message = err["msg"][:1].lower() + err["msg"][1:]
    return _format_loc(loc), message


def _format_loc(loc: list) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in USAGE_MODELS and i > 0 and isinstance(loc[i - 1], int):
            continue  # pydantic's discriminated-union tag: not part of the user's path
        else:
            out += ("." if out else "") + str(part)
    return out


def _fingerprint(config_dir: Path, names: list[str], plan_paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in [config_dir / n for n in names] + plan_paths:
        if path.exists():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
