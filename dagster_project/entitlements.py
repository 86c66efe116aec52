"""Entitlement checks at a moment (README), read from the published warehouse: fast, read-only,
and never in a run's way.

An unmetered feature is allowed while the plan that grants it is assigned. A metered one is
allowed while its meter's usage in the current cycle, up to the moment asked about, is below the
cycle's limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import duckdb

from dagster_project.catalog.filters import meter_quantity_sql
from dagster_project.publication import bucket_sql

# the meter's own quantity rule (catalog.filters.QUANTITY_SQL) over its events up to a moment
_USED_SO_FAR = f"""
with metered as (
    select event_at, event_id, unnest(meter_values) as meter
    from marts.events
    where bucket = {bucket_sql('?')} and account_id = ? and cycle_id = ? and status = 'metered' and event_at <= ?
),
values as (
    select event_at, event_id, meter.meter_value as meter_value, meter.distinct_value as distinct_value
    from metered
    where meter.meter_name = ?
)
select {{quantity}} from values
"""


class EntitlementLookupError(LookupError):
    pass


@dataclass(frozen=True)
class FeatureAccess:
    feature: str
    name: str
    allowed: bool
    limit: Decimal | None = None
    used: Decimal | None = None

    @property
    def remaining(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, Decimal(0))


@dataclass(frozen=True)
class AccountAccess:
    account_id: str
    at: datetime
    price_plan: str
    period_start: object
    period_end: object
    features: list[FeatureAccess]


def access_at(con: duckdb.DuckDBPyConnection, account_id: str, at: datetime) -> AccountAccess:
    """Each entitlement of the plan assigned to the account at `at` (a naive UTC datetime)."""
    cycles = con.execute(
        "select cycle_id, price_plan, period_start_date, period_end_date from marts.fct_billing_cycles "
        "where account_id = ? and period_start_date <= cast(? as date) and period_end_date > cast(? as date)",
        [account_id, at, at]).fetchall()
    if not cycles:
        known = con.execute("select count(*) from marts.dim_accounts where account_id = ?", [account_id]).fetchall()
        if not known[0][0]:
            raise EntitlementLookupError(f"unknown account '{account_id}'")
        raise EntitlementLookupError(f"no plan is assigned to '{account_id}' at {at:%Y-%m-%dT%H:%M:%SZ} "
                                     f"(or the warehouse was last built before it)")
    cycle_id, plan, start, end = cycles[0]
    rows = con.execute(
        "select e.feature, e.billable_name, e.meter_name, e.usage_limit, m.aggregation "
        "from config.plan_entitlements e left join config.usage_meters m on m.meter_name = e.meter_name "
        "where e.plan_name = ? order by e.feature", [plan]).fetchall()
    features = []
    for feature, name, meter, limit, aggregation in rows:
        if meter is None:
            features.append(FeatureAccess(feature, name, allowed=True))
            continue
        sql = _USED_SO_FAR.replace("{quantity}", meter_quantity_sql(aggregation))
        used = con.execute(sql, [account_id, account_id, cycle_id, at, meter]).fetchall()[0][0]
        features.append(FeatureAccess(feature, name, allowed=used < limit, limit=limit, used=used))
    return AccountAccess(account_id, at, plan, start, end, features)


def describe(access: AccountAccess) -> str:
    lines = [f"{access.account_id} on plan {access.price_plan} at {access.at:%Y-%m-%dT%H:%M:%SZ} "
             f"(cycle {access.period_start} to {access.period_end})"]
    if not access.features:
        lines.append("  no entitlements")
    width = max((len(f.feature) for f in access.features), default=0)
    for f in access.features:
        state = "allowed" if f.allowed else "denied "
        if f.limit is None:
            lines.append(f"  {f.feature:<{width}}  {state}")
        else:
            lines.append(f"  {f.feature:<{width}}  {state}  used {_plain(f.used)} of {_plain(f.limit)}, "
                         f"{_plain(f.remaining)} remaining")
    return "\n".join(lines)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if Decimal(text) == 0 else text
