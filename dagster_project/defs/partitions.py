"""Billing months: the partitions of rating, invoicing and publishing, and how a run maps to them.

A billing month holds the invoices issued in it. Invoices are numbered, and draw credits, in
issue-date order, so materializing months in order processes invoices in order; a run takes a
range of months in one go (a single-run backfill).
"""
from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from dagster_project.catalog import Catalog

FIRST_BILLING_MONTH = "2000-01-01"
# Partitions exist up to ten years past today, so --as-of may lie in the future.
MONTHS_AHEAD = 120

billing_months = dg.MonthlyPartitionsDefinition(start_date=FIRST_BILLING_MONTH, end_offset=MONTHS_AHEAD)

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def month_start(day: date) -> date:
    return day.replace(day=1)


def last_billing_month(as_of: date, catalog: Catalog) -> date:
    """The last month holding an invoice of a cycle closed by as_of (its issue date is up to the
    longest grace period later)."""
    longest_grace = max((plan.grace_period_days for plan in catalog.price_plans.values()), default=0)
    return month_start(max(as_of, as_of + timedelta(days=longest_grace)))


def run_tags(as_of: date, catalog: Catalog) -> dict[str, str]:
    """Tags of a run that bills every month up to as_of: the range of partition keys."""
    return {RANGE_START_TAG: FIRST_BILLING_MONTH, RANGE_END_TAG: last_billing_month(as_of, catalog).isoformat()}


def run_config(as_of: date) -> dict:
    return {"resources": {"billing_clock": {"config": {"as_of": as_of.isoformat()}}}}


def month_range(context: dg.AssetExecutionContext) -> tuple[date, date]:
    """(first month, last month) of the partitions a step materializes."""
    window = context.partition_time_window
    last = (window.end - timedelta(days=1)).date()
    return window.start.date(), month_start(last)


def dbt_vars(as_of: date) -> dict[str, str]:
    """dbt vars of a run: only the date matters to dbt (cycles closed by it, horizon)."""
    return {"as_of": as_of.isoformat()}
