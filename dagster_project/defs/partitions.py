"""Billing months: the partitions of rating, invoicing and publishing, and how a run maps to them.

A billing month holds the invoices issued in it. Invoices are numbered, and draw credits, in
issue-date order, so materializing months in order processes invoices in order; a run takes a
range of months in one go (a single-run backfill).

The months are dynamic partitions, keyed `YYYY-MM`: from the month of the first plan assignment
to the month of as_of plus the longest grace period. Each run adds the months it needs before it
starts, so the UI shows tens of months that grow as time passes, never a calendar of centuries.
"""
from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.catalog import Catalog

PARTITIONS_NAME = "billing_months"
billing_months = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_key(month: date) -> str:
    return month.strftime("%Y-%m")


def month_of_key(key: str) -> date:
    return date.fromisoformat(f"{key}-01")


def month_keys(first: date, last: date) -> list[str]:
    """Every month from first's to last's, as partition keys."""
    keys, month = [], month_start(first)
    while month <= last:
        keys.append(month_key(month))
        month = (month + timedelta(days=32)).replace(day=1)
    return keys


def last_billing_month(as_of: date, catalog: Catalog) -> date:
    """The last month holding an invoice of a cycle closed by as_of (its issue date is up to the
    longest grace period later)."""
    longest_grace = max((plan.grace_period_days for plan in catalog.price_plans.values()), default=0)
    return month_start(as_of + timedelta(days=longest_grace))


def first_billing_month(data_dir: Path, as_of: date) -> date:
    """The month of the earliest plan assignment in plan_assignments.csv (as_of's month without one).
    Rows that cannot be read are ignored here; reference-data checks report them."""
    starts = []
    path = data_dir / "plan_assignments.csv"
    if path.is_file():
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            for row in csv.DictReader(handle):
                try:
                    starts.append(date.fromisoformat((row.get("start_date") or "").strip()))
                except ValueError:
                    continue
    return month_start(min(starts + [as_of]))


def billing_range(data_dir: Path, as_of: date, catalog: Catalog) -> list[str]:
    """The partition keys of a run that bills everything up to as_of."""
    return month_keys(first_billing_month(data_dir, as_of), last_billing_month(as_of, catalog))


def add_billing_months(instance: dg.DagsterInstance, keys: list[str]) -> None:
    known = set(instance.get_dynamic_partitions(PARTITIONS_NAME))
    missing = [key for key in keys if key not in known]
    if missing:
        instance.add_dynamic_partitions(PARTITIONS_NAME, missing)


def run_tags(keys: list[str]) -> dict[str, str]:
    """Tags of a run over a range of months."""
    return {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]}


def run_config(as_of: date, full_refresh: bool = False) -> dict:
    config = {"resources": {"billing_clock": {"config": {"as_of": as_of.isoformat()}}}}
    if full_refresh:
        config["resources"]["options"] = {"config": {"full_refresh": True}}
    return config


BACKFILL_TAG = "tally/backfill"
INPUTS_TAG = "tally/input_fingerprint"  # set by `tally run` (run_inputs.py)


def backfill_months(context: dg.AssetExecutionContext) -> tuple[str, str] | None:
    """The billing months a backfill re-meters (first, last), or None for an ordinary run.

    A backfill is `tally run --month` (tag tally/backfill) or a Dagster backfill of partitions;
    its months' cycles are recomputed from their events, the others kept.
    """
    tags = context.run.tags
    if not (tags.get(BACKFILL_TAG) or "dagster/backfill" in tags):
        return None
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    if RANGE_START_TAG in tags:
        return tags[RANGE_START_TAG], tags[RANGE_END_TAG]
    return None


def month_range(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """(first month, last month) of the partitions a step materializes."""
    keys = context.partition_key_range
    return month_of_key(keys.start), month_of_key(keys.end)
