"""Benchmark: a month of events through `tally run`, against the one-query DuckDB floor.

    make bench                                    # 1M and 10M events, 100k accounts
    .venv/bin/python bench/run_benchmark.py --events 1000000 10000000 --with-100m

For each size it writes (once, cached under bench/data/) a pricing config -- Stripe-style 2.9% of
debit-card volume plus 30c per charge, graduated API tiers, storage packages over a LATEST gauge --
and N events for M accounts over October 2026 as Parquet (MAP columns, TIMESTAMPTZ), 0.5% of ids
duplicated. Then, in the same run: the floor, one hand-written DuckDB query that de-duplicates the
ids and computes the same meters per account and month from the same files; `tally run --as-of
2026-11-10` on a fresh warehouse (the full run); and a daily run: 3% more events in the next, open
cycle, `tally run --as-of 2026-11-11` on the same warehouse. Times are wall clock of the whole
process, peak RSS from /usr/bin/time. A script, not a test: machines are noisy, so each size
runs three times (100M once) and the medians are printed, with the spread.

    .venv/bin/python bench/run_benchmark.py --pdf-only 2000

times the PDF stage alone: N synthetic final invoices of the bench plan (four lines, three tiers,
a package), rendered to a scratch directory as the invoice_pdfs asset renders them, with the rate
and the time 100k invoices would take.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
TALLY = Path(sys.executable).with_name("tally")
CONFIG = {
    "event_schemas.yaml": """event_schemas:
  - name: payment
    attributes: [{name: amount, unit: USD, required: true}]
    dimensions: [payment_mode]
  - name: api_batch
    attributes: [{name: calls, unit: calls, required: true}]
  - name: storage
    attributes: [{name: gb, unit: GB, required: true}]
""",
    "usage_meters.yaml": """usage_meters:
  - {name: debit_volume, event_schema: payment, aggregation: SUM, attribute: amount,
     filter: {all: [{dimension: payment_mode, op: eq, value: debit_card}]}}
  - {name: debit_charges, event_schema: payment, aggregation: COUNT,
     filter: {all: [{dimension: payment_mode, op: eq, value: debit_card}]}}
  - {name: api_calls, event_schema: api_batch, aggregation: SUM, attribute: calls}
  - {name: storage_gb, event_schema: storage, aggregation: LATEST, attribute: gb}
""",
    "billable_items.yaml": """billable_items:
  - {name: card_pct, billable_name: Card processing 2.9%, type: usage, usage_meter: debit_volume}
  - {name: card_fee, billable_name: Card transactions, type: usage, usage_meter: debit_charges}
  - {name: api, billable_name: API calls, type: usage, usage_meter: api_calls}
  - {name: storage, billable_name: Storage, type: usage, usage_meter: storage_gb}
""",
    "billing.yaml": """issuer: {name: Bench Inc., address: "1 Bench Way", tax_id: B-1}
invoice_numbering: {prefix: INV, padding: 7, reset: yearly}
rounding: half_up
custom_charges: []
""",
    "price_plans/bench.yaml": """name: bench
currency: USD
billing_cycle: {interval: month, interval_count: 1, anchor: calendar}
grace_period_days: 3
rate_cards:
  usage:
    - {billable_item: card_pct, model: percentage, rate: "0.029"}
    - {billable_item: card_fee, model: per_unit, unit_price: "0.30"}
    - billable_item: api
      model: tiered
      tiers: [{up_to: 1000, unit_price: "0"}, {up_to: 100000, unit_price: "0.002", flat_fee: "5"},
              {up_to: null, unit_price: "0.001"}]
    - {billable_item: storage, model: package, package_size: 100, package_price: "10", free_units: 50}
""",
}
FLOOR = """
with ev as (select distinct on (id) * from read_parquet('{events}/*.parquet'))
select account_id, date_trunc('month', timestamp) as month,
    sum(cast(attributes['amount'] as decimal(38, 9)))
        filter (where schema = 'payment' and dimensions['payment_mode'] = 'debit_card') as debit_volume,
    count(*) filter (where schema = 'payment' and dimensions['payment_mode'] = 'debit_card') as debit_charges,
    sum(cast(attributes['calls'] as decimal(38, 9))) filter (where schema = 'api_batch') as api_calls,
    arg_max(cast(attributes['gb'] as decimal(38, 9)), (timestamp, id)) filter (where schema = 'storage') as storage_gb
from ev group by all
"""
EVENTS_SQL = """
copy (
  with base as ({base})
  select '{prefix}' || i as id,
         case when h % 10 < 5 then 'payment' when h % 10 < 9 then 'api_batch' else 'storage' end as schema,
         'acct_' || a as account_id,
         (timestamp '{start}' + to_microseconds((h % {span})::bigint))::timestamptz as timestamp,
         case when h % 10 < 5 then map {{'amount': ((h // 7) % 100000 / 100)::decimal(18, 2)::varchar}}
              when h % 10 < 9 then map {{'calls': ((h // 7) % 5000)::varchar}}
              else map {{'gb': ((h // 7) % 1000)::varchar}} end as attributes,
         case when h % 10 < 5 then map {{'payment_mode': case when h % 4 = 0 then 'debit_card' else 'ach' end}}
              else map {{}}::map(varchar, varchar) end as dimensions
  from base
) to '{out}' (format parquet, row_group_size 1000000)
"""


def generate(work: Path, events: int, accounts: int) -> None:
    data = work / "data"
    (data / "events").mkdir(parents=True)
    for name, text in CONFIG.items():
        (work / "config" / name).parent.mkdir(parents=True, exist_ok=True)
        (work / "config" / name).write_text(text)
    (data / "customers.csv").write_text("customer_id,name,email,address\n" + "".join(
        f"cus_{i},Customer {i},c{i}@example.com,\n" for i in range(accounts)))
    (data / "accounts.csv").write_text("account_id,customer_id,name,tax_rate\n" + "".join(
        f"acct_{i},cus_{i},Account {i},\n" for i in range(accounts)))
    (data / "plan_assignments.csv").write_text("account_id,price_plan,start_date,end_date\n" + "".join(
        f"acct_{i},bench,2026-10-01,\n" for i in range(accounts)))
    duplicates = max(events // 200, 1)
    base = (f"select i, (i * 2654435761) % {accounts} as a, hash(i) as h from range({events - duplicates}) t(i) "
            f"union all select i, (i * 2654435761) % {accounts}, hash(i) from range({duplicates}) t(i)")
    duckdb.sql(EVENTS_SQL.format(base=base, prefix="evt_", start="2026-10-01", span=2678400000000,
                                 out=data / "events" / "events.parquet"))


def add_day(work: Path, events: int, accounts: int) -> Path:
    out = work / "data" / "events" / "events_daily.parquet"
    base = f"select i, (i * 40503) % {accounts} as a, hash(i + 987654321) as h from range({events}) t(i)"
    duckdb.sql(EVENTS_SQL.format(base=base, prefix="evt_d_", start="2026-11-01", span=864000000000, out=out))
    return out


def settle_disk(quiet_seconds: float = 3, longest: float = 300) -> None:
    """Wait until the disk has finished with the previous run's files. Deleting 200k invoice files
    returns at once, but a filesystem mounted with `discard` (this machine's) goes on trimming
    their blocks, and the next run's 200k files were written in 66-70 s instead of 19-27 s while
    it did: what is timed would be the kernel, not Tally."""
    os.sync()
    started = last_change = time.monotonic()
    last = _disk_activity()
    while time.monotonic() - last_change < quiet_seconds and time.monotonic() - started < longest:
        time.sleep(0.5)
        now = _disk_activity()
        if now != last:
            last, last_change = now, time.monotonic()


def _disk_activity() -> tuple[int, ...]:
    """Sectors written and discarded so far, over every disk (/proc/diskstats; empty elsewhere)."""
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return ()
    fields = [line.split() for line in lines]
    return tuple(int(f[9]) + (int(f[16]) if len(f) > 16 else 0) for f in fields if len(f) > 9)


def timed(command: list[str], env: dict | None = None) -> tuple[float, int, subprocess.CompletedProcess]:
    """Wall seconds and peak RSS (bytes) of a whole process."""
    started = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    rss = int(proc.stderr.strip().splitlines()[-1]) * 1024 if proc.stderr.strip() else 0
    return seconds, rss, proc


def tally_run(work: Path, as_of: str) -> tuple[float, int, subprocess.CompletedProcess]:
    env = {**os.environ, "DAGSTER_HOME": str(work / ".dagster")}
    return timed([str(TALLY), "run", "--config", str(work / "config"), "--data", str(work / "data"),
                  "--warehouse", str(work / "warehouse" / "tally.duckdb"), "--invoices", str(work / "invoices"),
                  "--as-of", as_of], env)


def measure(events: int, accounts: int, daily: float, repeat: int) -> dict:
    work = ROOT / "bench" / "data" / f"{events}_{accounts}"
    if not (work / "data" / "events" / "events.parquet").exists():
        shutil.rmtree(work, ignore_errors=True)
        started = time.monotonic()
        generate(work, events, accounts)
        print(f"  generated {events:,} events in {time.monotonic() - started:.0f} s", flush=True)
    runs = []
    for _ in range(repeat):
        (work / "data" / "events" / "events_daily.parquet").unlink(missing_ok=True)
        for path in (work / "warehouse", work / "invoices", work / ".dagster"):
            shutil.rmtree(path, ignore_errors=True)
        settle_disk()
        floor_s, floor_rss, floor = timed([sys.executable, "-c", "import duckdb, sys; "
                                           "duckdb.sql(sys.argv[1]).fetchall()",
                                           FLOOR.format(events=work / "data" / "events")])
        if floor.returncode:
            raise SystemExit(f"the floor query failed: {floor.stderr[-500:]}")
        full_s, full_rss, full = tally_run(work, "2026-11-10")
        if full.returncode:
            raise SystemExit(f"tally run failed:\n{(full.stdout + full.stderr)[-2000:]}")
        add_day(work, int(events * daily), accounts)
        day_s, day_rss, day = tally_run(work, "2026-11-11")
        if day.returncode:
            raise SystemExit(f"the daily run failed:\n{(day.stdout + day.stderr)[-2000:]}")
        runs.append({"full": full_s, "floor": floor_s, "rss": max(full_rss, day_rss), "daily": day_s,
                     "stages": _stages(full), "daily_stages": _stages(day)})
        print(f"  {events:,} events: full {full_s:.1f} s, floor {floor_s:.1f} s, daily {day_s:.1f} s, "
              f"peak {max(full_rss, day_rss) / 2**30:.2f} GiB", flush=True)
    median = {key: statistics.median(run[key] for run in runs) for key in ("full", "floor", "rss", "daily")}
    spread = {key: (min(run[key] for run in runs), max(run[key] for run in runs)) for key in ("full", "floor", "daily")}
    return {**median, "events": events, "accounts": accounts, "runs": len(runs), "spread": spread,
            "stages": runs[-1]["stages"], "daily_stages": runs[-1]["daily_stages"]}


def _stages(run: subprocess.CompletedProcess) -> list[str]:
    return [line for line in run.stdout.splitlines() if line.startswith("  ")]


def synthetic_documents(count: int) -> dict[str, str]:
    """JSON documents of `count` final invoices of the bench plan, each with its own numbers."""
    from dagster_project.catalog.models import Issuer
    from dagster_project.invoicing.documents import invoice_document, render_json

    issuer = Issuer(name="Bench Inc.", address="1 Bench Way", tax_id="B-1")
    documents = {}
    for i in range(count):
        volume, charges, calls, gb = (Decimal(1000 + i % 50_000) + Decimal(i % 100) / 100, 40 + i % 500,
                                      Decimal(500 + (i * 37) % 150_000), Decimal(i % 1000))
        tier_2 = min(max(calls - 1000, Decimal(0)), Decimal(99_000))
        tier_3 = max(calls - 100_000, Decimal(0))
        packages = -(-max(gb - 50, Decimal(0)) // 100)
        lines = [
            _line("usage", "card_pct", "Card processing 2.9%", volume, volume * Decimal("0.029"),
                  [{"kind": "percentage", "quantity": str(volume), "rate": "0.029",
                    "amount": str(volume * Decimal("0.029"))}]),
            _line("usage", "card_fee", "Card transactions", Decimal(charges), charges * Decimal("0.30"),
                  [{"kind": "per_unit", "quantity": str(charges), "unit_price": "0.3",
                    "amount": str(charges * Decimal("0.30"))}]),
            _line("usage", "api", "API calls", calls, tier_2 * Decimal("0.002") + 5 + tier_3 * Decimal("0.001"), [
                {"kind": "tier", "tier": 1, "from": "0", "up_to": "1000", "quantity": str(min(calls, 1000)),
                 "unit_price": "0", "flat_fee": "0", "amount": "0"},
                {"kind": "tier", "tier": 2, "from": "1000", "up_to": "100000", "quantity": str(tier_2),
                 "unit_price": "0.002", "flat_fee": "5", "amount": str(tier_2 * Decimal("0.002") + 5)},
                {"kind": "tier", "tier": 3, "from": "100000", "quantity": str(tier_3), "unit_price": "0.001",
                 "flat_fee": "0", "amount": str(tier_3 * Decimal("0.001"))}]),
            _line("usage", "storage", "Storage", gb, packages * 10, [
                {"kind": "package", "quantity": str(gb), "free_units": "50",
                 "billable_units": str(max(gb - 50, Decimal(0))), "package_size": "100", "packages": str(packages),
                 "unit_price": "10", "amount": str(packages * 10)}]),
        ]
        subtotal = sum(line["amount"] for line in lines)
        header = {"invoice_number": f"INV-2026-{i + 1:07d}", "status": "final", "kind": "cycle",
                  "account_id": f"acct_{i}", "customer_id": f"cus_{i}", "price_plan": "bench", "currency": "USD",
                  "currency_digits": 2, "period_start_date": date(2026, 10, 1), "period_end_date": date(2026, 11, 1),
                  "issue_date": date(2026, 11, 4), "subtotal_amount": subtotal, "credits_applied_amount": Decimal(0),
                  "total_amount": subtotal, "wallet_applied_amount": Decimal(0), "amount_due_amount": subtotal}
        customer = {"customer_id": f"cus_{i}", "name": f"Customer {i}", "email": f"c{i}@example.com"}
        document = invoice_document(header, lines, [], issuer, customer, payment_terms_days=30,
                                    units={"card_pct": "USD", "api": "calls", "storage": "GB"})
        documents[f"acct_{i}/2026-10-01_cycle"] = render_json(document)
    return documents


def _line(kind: str, item: str, name: str, quantity: Decimal, amount: Decimal, details: list[dict]) -> dict:
    return {"line_type": kind, "billable_item": item, "description": name, "quantity": quantity,
            "amount": amount.quantize(Decimal("0.01")), "details": details}


def measure_pdfs(count: int) -> None:
    """Render `count` synthetic invoices' PDFs as the invoice_pdfs asset does, and print the rate.
    The wall-clock rate depends on what else the machine runs; the CPU time of one document (a
    sample rendered in this process) does not, and gives the time 100k take on free cores."""
    import hashlib

    import orjson
    import polars as pl

    from dagster_project.invoicing.pdf import PdfRenderer, publish_pdfs

    documents = synthetic_documents(count)
    renderer, sample = PdfRenderer("en_US"), list(documents.values())[:200]
    renderer.render(orjson.loads(sample[0]))  # the compiler's fonts and template, loaded once
    cpu = time.process_time()
    for text in sample:
        renderer.render(orjson.loads(text))
    cpu_ms = (time.process_time() - cpu) / len(sample) * 1000
    stamps = pl.DataFrame([{"invoice_id": invoice_id, "digest": hashlib.md5(text.encode()).hexdigest(),
                            "rendered_digest": None, "pdf_bytes": None} for invoice_id, text in documents.items()],
                          schema={"invoice_id": pl.String, "digest": pl.String, "rendered_digest": pl.String,
                                  "pdf_bytes": pl.Int64})
    with tempfile.TemporaryDirectory(prefix="tally-bench-pdf-") as scratch:
        started = time.monotonic()
        report = publish_pdfs(Path(scratch), stamps, lambda ids: ((i, documents[i]) for i in ids),
                              set(documents), set(), "en_US")
        seconds = time.monotonic() - started
        size = report.rendered["pdf_bytes"].mean()
    cores = os.cpu_count() or 1
    rate = report.rendered.height / seconds
    print(f"{report.rendered.height:,} PDFs ({size / 1024:.0f} KiB each) in {seconds:.1f} s on {cores} core(s): "
          f"{rate:.0f} per second; 100k would take {100_000 / rate / 60:.1f} min")
    print(f"one PDF takes {cpu_ms:.1f} ms of CPU: {cores * 1000 / cpu_ms:.0f} per second on {cores} free core(s), "
          f"100k in {100_000 * cpu_ms / 1000 / cores / 60:.1f} min")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--daily", type=float, default=0.03, help="share of new events in the daily run")
    parser.add_argument("--repeat", type=int, help="runs per size, medians reported (default: 3, and 1 at 100M, "
                                                   "where one takes about 20 minutes)")
    parser.add_argument("--with-100m", action="store_true", help="also 100M events (about 25 minutes with 1M and 10M)")
    parser.add_argument("--pdf-only", type=int, metavar="N", help="only time the PDFs of N synthetic invoices")
    args = parser.parse_args()
    if args.pdf_only:
        measure_pdfs(args.pdf_only)
        return 0
    sizes = args.events + ([100_000_000] if args.with_100m else [])
    results = []
    for events in sizes:
        print(f"{events:,} events, {args.accounts:,} accounts:", flush=True)
        repeat = args.repeat or (1 if events >= 100_000_000 else 3)
        results.append(measure(events, args.accounts, args.daily, repeat))
    print("\n| events / accounts | tally run | floor | ratio | peak RSS | daily run | daily / full |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['events'] / 1e6:g}M / {r['accounts'] / 1e3:g}k | {r['full']:.0f} s | {r['floor']:.1f} s | "
              f"{r['full'] / r['floor']:.1f}x | {r['rss'] / 2**30:.1f} GiB | {r['daily']:.0f} s | "
              f"{r['daily'] / r['full']:.0%} |")
    for r in results:
        if r["runs"] > 1:
            print(f"\n{r['events'] / 1e6:g}M: medians of {r['runs']} runs; " + ", ".join(
                f"{key} {low:.1f}-{high:.1f} s" for key, (low, high) in r["spread"].items()))
    for r in results:
        pdfs = [line.strip() for line in r["stages"] if line.strip().startswith("pdfs")]
        print(f"\nPDF stage of the full run at {r['events']:,} events: {pdfs[0] if pdfs else 'not run'}")
    for r in results:
        print(f"\nstages of the full run at {r['events']:,} events:")
        print("\n".join(r["stages"]))
        print(f"stages of the daily run at {r['events']:,} events:")
        print("\n".join(r["daily_stages"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
