"""The demo company: Acme Cloud's customers and three months of their usage, generated on demand.

Deterministic (a seeded generator), so every clone gets the same data and the same invoices.
It exercises the whole pipeline: JSONL and Parquet event files, events in local time zones, a
duplicate id, an invalid event, an event for an unknown account, a gauge sampled many times; and
the whole pricing model: payments at 2.9% + 30c, graduated API tiers with storage packages, seats
with a plan change into a tier with a commitment and a JsonLogic volume discount, fees in advance
(opening invoices), promotional and plan credits, a prepaid wallet, a Make-style operations
allowance (a metered entitlement), and an LLM API priced per million tokens by model.
"""
from __future__ import annotations

import csv
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEMO_AS_OF = date(2026, 11, 10)
FIRST_DAY = date(2026, 8, 1)
LAST_DAY = date(2026, 11, 9)  # usage runs into the open November cycle

# customer_id, name, email, address, tax_id, payment_terms_days (blank: billing.yaml's 30 days)
CUSTOMERS = [
    ("cus_globex", "Globex Corporation", "billing@globex.example", "42 Elm St, Springfield", "", ""),
    ("cus_initech", "Initech LLC", "ap@initech.example", "9 Oak Ave, Shelbyville", "", ""),
    ("cus_umbrella", "Umbrella Europe GmbH", "rechnung@umbrella.example", "Hauptstrasse 5, Berlin", "DE811907980",
     "14"),
    ("cus_hooli", "Hooli Inc.", "finance@hooli.example", "1 Infinite Loop, Palo Alto", "", ""),
    ("cus_stark", "Stark Industries", "ap@stark.example", "10880 Malibu Point, Malibu", "", ""),
    ("cus_acme_auto", "Wile E. Automation", "ops@wile.example", "Desert Rd 1, Tucson", "", ""),
    ("cus_cyberdyne", "Cyberdyne Systems", "billing@cyberdyne.example", "18144 El Camino Real, Sunnyvale", "", ""),
]
# account_id, customer_id, name, tax_rate (blank: the default sales tax), segment (for pricing rules)
ACCOUNTS = [
    ("acct_globex_shop", "cus_globex", "Globex web shop", "", "enterprise"),
    ("acct_hooli_pay", "cus_hooli", "Hooli checkout", "", "smb"),
    ("acct_initech_api", "cus_initech", "Initech production API", "", "smb"),
    ("acct_umbrella_api", "cus_umbrella", "Umbrella EU API", "0.19", "enterprise"),
    ("acct_stark_team", "cus_stark", "Stark engineering team", "", "enterprise"),
    ("acct_wile_automation", "cus_acme_auto", "Wile automations", "", "smb"),
    ("acct_cyberdyne_llm", "cus_cyberdyne", "Cyberdyne research", "", "enterprise"),
]
ASSIGNMENTS = [
    ("acct_globex_shop", "payments_standard", "2026-08-01", ""),
    ("acct_hooli_pay", "payments_standard", "2026-09-10", ""),
    ("acct_initech_api", "api_growth", "2026-08-01", ""),
    ("acct_umbrella_api", "api_growth", "2026-08-15", ""),
    ("acct_stark_team", "team_seats", "2026-08-10", "2026-10-16"),  # upgraded mid-October
    ("acct_stark_team", "team_business", "2026-10-16", ""),
    ("acct_wile_automation", "automation_core", "2026-08-01", ""),
    ("acct_cyberdyne_llm", "llm_api", "2026-09-01", ""),
]
LICENSE_UPDATES = [
    ("acct_stark_team", "seats", "8", "2026-08-10"),
    ("acct_stark_team", "seats", "12", "2026-09-01"),
    ("acct_stark_team", "seats", "15", "2026-09-21"),
    ("acct_stark_team", "seats", "24", "2026-10-16"),
]
CREDIT_GRANTS = [
    ("welcome_initech", "acct_initech_api", "100", "all", "2026-08-01", "", "2"),
    ("promo_umbrella_sept", "acct_umbrella_api", "50", "api_calls", "2026-09-01", "2026-10-16", "1"),
    ("goodwill_stark", "acct_stark_team", "75", "all", "2026-10-01", "2027-01-01", "3"),
]
WALLET_TOPUPS = [
    ("topup_hooli_1", "acct_hooli_pay", "200", "2026-09-10"),
    ("topup_hooli_2", "acct_hooli_pay", "300", "2026-10-20"),
    ("topup_cyberdyne_1", "acct_cyberdyne_llm", "25", "2026-09-01"),
]


def ensure_demo_data(data_dir: Path) -> bool:
    """Write the demo dataset into data_dir unless it is already there. True when it was written."""
    if (data_dir / "accounts.csv").exists():
        return False
    write_demo_data(data_dir)
    return True


def write_demo_data(data_dir: Path) -> None:
    events_dir = data_dir / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    _write_csv(data_dir / "customers.csv", ["customer_id", "name", "email", "address", "tax_id", "payment_terms_days"],
               CUSTOMERS)
    _write_csv(data_dir / "accounts.csv", ["account_id", "customer_id", "name", "tax_rate", "segment"], ACCOUNTS)
    _write_csv(data_dir / "plan_assignments.csv", ["account_id", "price_plan", "start_date", "end_date"],
               ASSIGNMENTS)
    _write_csv(data_dir / "license_updates.csv", ["account_id", "billable_item", "quantity", "effective_date"],
               LICENSE_UPDATES)
    _write_csv(data_dir / "credit_grants.csv", ["grant_id", "account_id", "amount", "applies_to", "granted_date",
                                                "expiry_date", "priority"], CREDIT_GRANTS)
    _write_csv(data_dir / "wallet_topups.csv", ["topup_id", "account_id", "amount", "date"], WALLET_TOPUPS)

    rng = random.Random(20261110)
    events = _payments(rng) + _api_batches(rng) + _scenario_runs(rng) + _llm_requests(rng)
    events.sort(key=lambda e: (e["timestamp"], e["id"]))
    by_month: dict[str, list[dict]] = {}
    for event in events:
        by_month.setdefault(event["timestamp"][:7], []).append(event)
    for month, month_events in by_month.items():
        lines = [json.dumps(e, ensure_ascii=False) for e in month_events]
        if month == "2026-09":
            lines.insert(10, lines[3])  # a producer retried: the same id again (a duplicate)
            lines.insert(20, '{"id": "pay_broken", "schema": "payment", "account_id": "acct_globex_shop", '
                             '"timestamp": "2026-09-31T10:00:00Z", "attributes": {"transaction_amount": 12}}')
            lines.insert(30, json.dumps({"id": "pay_stray", "schema": "payment", "account_id": "acct_unknown",
                                         "timestamp": "2026-09-15T12:00:00Z",
                                         "attributes": {"transaction_amount": "5.00"},
                                         "dimensions": {"payment_mode": "debit_card"}}))
        (events_dir / f"{month}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_storage_parquet(events_dir / "storage_snapshots.parquet", rng)


def _write_csv(path: Path, header: list[str], rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _days():
    day = FIRST_DAY
    while day <= LAST_DAY:
        yield day
        day += timedelta(days=1)


def _timestamp(day: date, rng: random.Random, offset_hours: int = 0) -> str:
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))
    if offset_hours:  # some producers send local time with an offset; Tally converts to UTC
        local = moment + timedelta(hours=offset_hours)
        return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{offset_hours:+03d}:00"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _payments(rng: random.Random) -> list[dict]:
    events, number = [], 0
    shops = {"acct_globex_shop": (date(2026, 8, 1), 9), "acct_hooli_pay": (date(2026, 9, 10), 4)}
    for account, (start, per_day) in shops.items():
        for day in _days():
            if day < start:
                continue
            for _ in range(rng.randint(per_day // 2, per_day)):
                number += 1
                mode = rng.choices(["debit_card", "ach", "credit_card"], weights=[6, 2, 2])[0]
                cents = rng.randint(500, 40000)
                amount = f"{cents // 100}.{cents % 100:02d}"
                events.append({
                    "id": f"pay_{number:05d}", "schema": "payment", "account_id": account,
                    "timestamp": _timestamp(day, rng, offset_hours=rng.choice([0, 0, 2, -5])),
                    # amounts arrive both as JSON numbers and as decimal strings; both are exact
                    "attributes": {"transaction_amount": float(amount) if number % 3 else amount},
                    "dimensions": {"payment_mode": mode, "country": rng.choice(["US", "US", "CA", "MX"])},
                })
    return events


def _api_batches(rng: random.Random) -> list[dict]:
    events, number = [], 0
    volumes = {"acct_initech_api": (date(2026, 8, 1), 8000), "acct_umbrella_api": (date(2026, 8, 15), 45000)}
    for account, (start, daily) in volumes.items():
        for day in _days():
            if day < start:
                continue
            for _ in range(4):
                number += 1
                events.append({
                    "id": f"api_{number:05d}", "schema": "api_request_batch", "account_id": account,
                    "timestamp": _timestamp(day, rng),
                    "attributes": {"calls": rng.randint(daily // 8, daily // 2)},
                    "dimensions": {"endpoint": rng.choice(["/v1/search", "/v1/items", "/v1/orders"])},
                })
    return events


def _scenario_runs(rng: random.Random) -> list[dict]:
    """Automation runs: a busy account that goes past its 10,000 included operations some months."""
    events = []
    for day in _days():
        for run in range(rng.randint(3, 8)):
            events.append({
                "id": f"run_{day:%Y%m%d}_{run}", "schema": "scenario_run", "account_id": "acct_wile_automation",
                "timestamp": _timestamp(day, rng),
                "attributes": {"operations": rng.randint(20, 140 if day.month == 9 else 60)},
                "dimensions": {"scenario": rng.choice(["sync-crm", "invoice-mailer", "slack-digest"])},
            })
    return events


def _llm_requests(rng: random.Random) -> list[dict]:
    events = []
    for day in _days():
        if day < date(2026, 9, 1):
            continue
        for request in range(rng.randint(10, 25)):
            model = rng.choices(["tally-large", "tally-small", "tally-small-2"], weights=[3, 5, 2])[0]
            events.append({
                "id": f"llm_{day:%Y%m%d}_{request}", "schema": "llm_request", "account_id": "acct_cyberdyne_llm",
                "timestamp": _timestamp(day, rng),
                "attributes": {"input_tokens": rng.randint(2_000, 120_000), "output_tokens": rng.randint(200, 8_000)},
                "dimensions": {"model": model},
            })
    return events


def _write_storage_parquet(path: Path, rng: random.Random) -> None:
    """Storage snapshots as Parquet with MAP columns: a growing gauge, sampled three times a day."""
    rows = {"id": [], "schema": [], "account_id": [], "timestamp": [], "attributes": [], "dimensions": []}
    for account, start, gb in (("acct_initech_api", date(2026, 8, 1), 40.0),
                               ("acct_umbrella_api", date(2026, 8, 15), 300.0)):
        for day in _days():
            if day < start:
                continue
            for sample in range(3):
                gb = max(0.0, gb + rng.uniform(-2, 4))
                rows["id"].append(f"gb_{account}_{day:%Y%m%d}_{sample}")
                rows["schema"].append("storage_snapshot")
                rows["account_id"].append(account)
                rows["timestamp"].append(datetime(day.year, day.month, day.day, 8 * sample, tzinfo=UTC))
                rows["attributes"].append([("gb", f"{gb:.3f}")])
                rows["dimensions"].append([])
    table = pa.table({
        "id": pa.array(rows["id"]), "schema": pa.array(rows["schema"]), "account_id": pa.array(rows["account_id"]),
        "timestamp": pa.array(rows["timestamp"], type=pa.timestamp("us", tz="UTC")),
        "attributes": pa.array(rows["attributes"], type=pa.map_(pa.string(), pa.string())),
        "dimensions": pa.array(rows["dimensions"], type=pa.map_(pa.string(), pa.string())),
    })
    pq.write_table(table, path)
