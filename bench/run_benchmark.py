"""Benchmark: N events for M accounts as Parquet, through the whole pipeline, against a floor.

    .venv/bin/python bench/run_benchmark.py --events 1000000 --accounts 1000

Generates the events (three months, the demo company's payments and API meters), runs `tally run` on them
in a fresh warehouse and prints events/second, the wall time of each stage (taken from the run's
progress lines as they arrive) and the peak memory of the run, then the time of one hand-written
DuckDB query computing the same meter quantities from the same files: the floor. Medians over
--repeat runs. This is a script, not a test: machines are noisy; compare ratios.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
TALLY = Path(sys.executable).with_name("tally")
AS_OF = "2026-11-10"
# The run's progress lines in order, and the stage that each one ends. The time before a dbt
# start line is Dagster's own work between steps; dbt's own "Done." line ends each dbt step.
PROGRESS = [("catalog:", "start-up and catalog"), ("events:", "load events"), ("reference data:", "reference data"),
            ("dbt build", "between steps"), ("Done. PASS=", "dbt metering"), ("rating:", "rating"),
            ("invoicing:", "invoicing"), ("dbt build", "between steps"), ("Done. PASS=", "dbt billing marts"),
            ("publishing:", "publishing")]
STAGES = list(dict.fromkeys(label for _, label in PROGRESS))


def generate(workdir: Path, events: int, accounts: int, files: int) -> None:
    """Accounts split between the payments and API plans; events spread over Aug-Oct 2026."""
    data = workdir / "data"
    (data / "events").mkdir(parents=True)
    shutil.copytree(ROOT / "pricing_config", workdir / "config")
    with (data / "customers.csv").open("w") as out:
        out.write("customer_id,name,email,address\n")
        out.writelines(f"cus_{i},Customer {i},c{i}@example.com,\n" for i in range(accounts))
    with (data / "accounts.csv").open("w") as out:
        out.write("account_id,customer_id,name,tax_rate\n")
        out.writelines(f"acct_{i},cus_{i},Account {i},\n" for i in range(accounts))
    with (data / "plan_assignments.csv").open("w") as out:
        out.write("account_id,price_plan,start_date,end_date\n")
        out.writelines(f"acct_{i},{'payments_standard' if i % 2 == 0 else 'api_growth'},2026-08-01,\n"
                       for i in range(accounts))
    per_file = events // files
    con = duckdb.connect()
    for f in range(files):
        start = f * per_file
        count = per_file if f < files - 1 else events - start
        # payments go to even accounts, API batches and storage snapshots to odd ones
        con.execute(f"""
            copy (
                select
                    'evt_' || n as id,
                    case when n % 10 < 7 then 'payment' when n % 10 < 9 then 'api_request_batch'
                         else 'storage_snapshot' end as schema,
                    'acct_' || (case when n % 10 < 7 then (hash(n) % {accounts // 2}) * 2
                                     else (hash(n) % {accounts // 2}) * 2 + 1 end) as account_id,
                    timestamp '2026-08-01' + to_seconds(hash(n * 7) % (92 * 86400)) as timestamp,
                    case when n % 10 < 7
                            then map(['transaction_amount'],
                                     [((hash(n * 3) % 40000) / 100.0 + 5)::decimal(12, 2)::varchar])
                         when n % 10 < 9 then map(['calls'], [(hash(n * 5) % 5000)::varchar])
                         else map(['gb'], [((hash(n * 11) % 100000) / 100.0)::decimal(12, 2)::varchar]) end
                        as attributes,
                    case when n % 10 < 7
                            then map(['payment_mode', 'country'],
                                     [['debit_card', 'ach', 'credit_card'][cast(hash(n * 13) % 3 + 1 as bigint)], 'US'])
                         when n % 10 < 9 then map(['endpoint'], ['/v1/items'])
                         else cast(map() as map(varchar, varchar)) end as dimensions
                from range({start}, {start + count}) t(n)
            ) to '{data / 'events' / f'part_{f:03d}.parquet'}' (format parquet, row_group_size 200000)
        """)
    con.close()


def run_pipeline(workdir: Path) -> tuple[float, dict[str, float], float]:
    """Wall time, seconds per stage, and peak resident memory (GiB) of one `tally run`."""
    for name in ("warehouse.duckdb", "invoices"):
        path = workdir / name
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    cmd = [str(TALLY), "run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
           "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
           "--as-of", AS_OF]
    started = time.perf_counter()
    times: dict[str, float] = {}
    expected, previous = iter(PROGRESS), 0.0
    prefix, label = next(expected)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            if label is not None and line.strip().startswith(prefix):
                now = time.perf_counter() - started
                times[label] = times.get(label, 0.0) + now - previous
                previous = now
                prefix, label = next(expected, (None, None))
        code = proc.wait()
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"tally run failed with exit status {code}")
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 / 1024
    times["end of run"] = wall - previous
    return wall, times, peak_gib


FLOOR_QUERY = """
with events as (
    select account_id, cast(timestamp as timestamp) as event_at, schema, attributes, dimensions, id
    from read_parquet('{glob}')
)
select account_id, date_trunc('month', event_at) as month,
       sum(cast(attributes['transaction_amount'] as decimal(38, 18)))
           filter (where schema = 'payment' and dimensions['payment_mode'] = 'debit_card') as debit_card_volume,
       count(*) filter (where schema = 'payment' and dimensions['payment_mode'] = 'debit_card') as debit_card_charges,
       sum(cast(attributes['calls'] as decimal(38, 18))) filter (where schema = 'api_request_batch') as api_calls,
       arg_max(cast(attributes['gb'] as decimal(38, 18)), (event_at, id))
           filter (where schema = 'storage_snapshot') as storage_gb
from events
group by all
"""


def floor_seconds(workdir: Path) -> float:
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(FLOOR_QUERY.format(glob=workdir / "data" / "events" / "*.parquet")).fetchall()
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="pipeline runs (the median is reported)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "data")
    args = parser.parse_args()

    workdir = args.workdir / f"{args.events}_{args.accounts}"
    if not (workdir / "data").exists():
        started = time.perf_counter()
        generate(workdir, args.events, args.accounts, args.files)
        elapsed = time.perf_counter() - started
        print(f"generated {args.events:,} events for {args.accounts:,} accounts in {elapsed:.1f}s")
    runs = [run_pipeline(workdir) for _ in range(args.repeat)]
    wall = statistics.median(r[0] for r in runs)
    stages = {name: statistics.median(r[1].get(name, 0.0) for r in runs) for name in [*STAGES, "end of run"]}
    peak = max(r[2] for r in runs)
    floors = [floor_seconds(workdir) for _ in range(3)]
    floor = statistics.median(floors)
    result = {"events": args.events, "accounts": args.accounts, "pipeline_seconds": round(wall, 2),
              "events_per_second": round(args.events / wall), "peak_memory_gib": round(peak, 2),
              "floor_query_seconds": round(floor, 3), "pipeline_over_floor": round(wall / floor, 1),
              "stages_seconds": {k: round(v, 2) for k, v in stages.items()}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
