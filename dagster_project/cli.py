"""`tally` commands. `run` and `demo` execute the Dagster job of definitions.py in-process: the
same assets, checks and code path as `dagster dev` and the schedule, never a second pipeline.

Exit codes: 0 done; 1 failed (nothing published, nothing committed: fix what the message names
and run again); 2 wrong usage; 3 done, but input was held back (accounts not billed, rows set
aside, event files refused: listed); 4 another run holds the warehouse.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path

from dagster_project.catalog import ConfigError, load_catalog

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY = 0, 1, 2, 3, 4
PATH_FLAGS = {
    "config": ("TALLY_CONFIG_DIR", "pricing_config"),
    "data": ("TALLY_DATA_DIR", "seeds"),
    "warehouse": ("TALLY_WAREHOUSE", "warehouse/tally.duckdb"),
    "invoices": ("TALLY_INVOICES_DIR", "invoices"),
}
INSTANCE_SETTINGS = Path(__file__).with_name("dagster.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ["TALLY_VERBOSE"] = "1"
    if args.command == "validate":
        return _validate(_resolve("config", args.config))
    if args.command == "entitlements":
        return _entitlements(args.account_id, args.at or datetime.now(UTC).replace(tzinfo=None),
                             _resolve("warehouse", args.warehouse))
    if args.command == "run":
        paths = {flag: _resolve(flag, getattr(args, flag)) for flag in PATH_FLAGS}
        return _run(paths, args.as_of or datetime.now(UTC).date(), months=args.month,
                    full_refresh=args.full_refresh)
    return _demo(args.as_of)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show dbt's log and Dagster's")
    parser = argparse.ArgumentParser(prog="tally", description="Warehouse-native usage-based billing.",
                                     parents=[common],
                                     epilog="exit codes: 0 done, 1 failed (nothing published), 2 wrong usage, "
                                            "3 done with input held back (listed), 4 warehouse busy")
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", parents=[common], help="validate the pricing configuration")
    validate.add_argument("--config", help="configuration directory (TALLY_CONFIG_DIR, default pricing_config/)")

    run = commands.add_parser("run", parents=[common],
                              help="load, meter, rate, invoice, check and publish up to --as-of")
    _add_path_flags(run)
    run.add_argument("--as-of", type=date.fromisoformat, help="the run's date, YYYY-MM-DD (default: today, UTC)")
    run.add_argument("--month", type=_month, action="append",
                     help="backfill: re-meter and re-rate only this billing month, YYYY-MM (repeatable); drafts are "
                          "recomputed, final invoices republished unchanged")
    run.add_argument("--full-refresh", action="store_true",
                     help="rebuild metering from raw events instead of from the last checkpoint")

    entitlements = commands.add_parser("entitlements", parents=[common],
                                       help="what an account may use, from the published warehouse")
    entitlements.add_argument("account_id")
    entitlements.add_argument("--at", type=_utc_timestamp, help="ISO-8601 timestamp (default: now, UTC)")
    entitlements.add_argument("--warehouse", help="TALLY_WAREHOUSE, default warehouse/tally.duckdb")

    demo = commands.add_parser("demo", parents=[common],
                               help="generate the demo dataset if absent and run the pipeline on it")
    demo.add_argument("--as-of", type=date.fromisoformat, help="the run's date (default: the demo's own date)")
    return parser


def _version() -> str:
    parts = [f"tally {metadata.version('tally')}"]
    for package in ("dagster", "dbt-core", "duckdb", "polars"):
        parts.append(f"{package} {metadata.version(package)}")
    return f"{parts[0]} ({', '.join(parts[1:])})"


def _month(text: str) -> str:
    date.fromisoformat(f"{text}-01")
    if len(text) != 7:
        raise ValueError(text)
    return text


def _utc_timestamp(text: str) -> datetime:
    """ISO 8601; an offset is converted to UTC, none means UTC (SPEC 3.2). Returned naive, in UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _error(message: str) -> None:
    print(f"tally: {message}", file=sys.stderr)


def _entitlements(account_id: str, at: datetime, warehouse_path: Path) -> int:
    import duckdb

    from dagster_project.entitlements import EntitlementLookupError, access_at, describe
    from dagster_project.publication import publication_for

    published = publication_for(warehouse_path).database
    if not published.exists():
        _error(f"no published warehouse at {published}: run `tally run` first")
        return EXIT_FAILED
    con = duckdb.connect(str(published), read_only=True)
    try:
        print(describe(access_at(con, account_id, at)))
    except EntitlementLookupError as exc:
        _error(str(exc))
        return EXIT_FAILED
    finally:
        con.close()
    return EXIT_OK


def _add_path_flags(parser: argparse.ArgumentParser) -> None:
    for flag, (variable, default) in PATH_FLAGS.items():
        parser.add_argument(f"--{flag}", help=f"{variable}, default {default}")


def _resolve(flag: str, given: str | None) -> Path:
    variable, default = PATH_FLAGS[flag]
    return Path(given or os.environ.get(variable) or default).expanduser().resolve()


def _validate(config_dir: Path) -> int:
    try:
        catalog = load_catalog(config_dir)
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_FAILED
    print(f"{config_dir}: valid ({len(catalog.price_plans)} price plans, {len(catalog.usage_meters)} usage meters, "
          f"{len(catalog.billable_items)} billable items)")
    return EXIT_OK


def _print_problems(exc: ConfigError) -> None:
    _error(f"invalid configuration ({len(exc.problems)} problem(s)); nothing was run:")
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _run(paths: dict[str, Path], as_of: date, months: list[str] | None = None, full_refresh: bool = False) -> int:
    from dagster_project import run_lock
    from dagster_project.ingestion.reference_data import DataDirectoryError, check_data_directory
    from dagster_project.publication import publication_for
    from dagster_project.run_inputs import input_fingerprint, unchanged_since

    try:
        catalog = load_catalog(paths["config"])
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_FAILED
    try:
        check_data_directory(paths["data"])
    except DataDirectoryError as exc:
        _error(f"{exc}; nothing was run")
        return EXIT_FAILED
    try:
        run_lock.acquire(paths["warehouse"], f"tally run --as-of {as_of}")
    except run_lock.WarehouseBusy as exc:
        _error(str(exc))
        return EXIT_BUSY
    except OSError as exc:
        _error(f"cannot use the warehouse {paths['warehouse']}: {exc.strerror or exc}")
        return EXIT_FAILED
    try:
        fingerprint = input_fingerprint(paths, as_of, months, full_refresh)
        published = publication_for(paths["warehouse"]).database
        last_run = unchanged_since(paths["warehouse"], fingerprint, paths["invoices"], published)
        if last_run is not None:
            print(f"tally run as of {as_of}: nothing new since run {last_run} (same configuration, data, events and "
                  f"date); invoices and warehouse are up to date")
            held_back = _print_summary(paths["warehouse"])
            return EXIT_PARTIAL if held_back else EXIT_OK
        return _execute(paths, as_of, catalog, months, full_refresh, fingerprint)
    finally:
        run_lock.release(paths["warehouse"])


def _execute(paths: dict[str, Path], as_of: date, catalog, months: list[str] | None, full_refresh: bool,
             fingerprint: str) -> int:
    for flag, (variable, _) in PATH_FLAGS.items():
        os.environ[variable] = str(paths[flag])
    print(f"tally run as of {as_of}: config {paths['config']}, data {paths['data']}", flush=True)

    from dagster_project.definitions import PIPELINE_JOB, defs
    from dagster_project.defs.partitions import (
        BACKFILL_TAG,
        INPUTS_TAG,
        add_billing_months,
        billing_range,
        run_config,
        run_tags,
    )
    from dagster_project.defs.progress import PROGRESS_VARIABLE, is_verbose

    job = defs.resolve_job_def(PIPELINE_JOB)
    config = run_config(as_of, full_refresh)
    if not is_verbose():
        # each step prints its own line; failures are summarized below
        config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    os.environ[PROGRESS_VARIABLE] = "bar" if sys.stdout.isatty() else "lines"
    keys = sorted(months) if months else billing_range(paths["data"], as_of, catalog)
    tags = {**run_tags(keys), INPUTS_TAG: fingerprint, **({BACKFILL_TAG: "cli"} if months else {})}
    with _instance() as instance:
        add_billing_months(instance, keys)
        result = job.execute_in_process(run_config=config, tags=tags, instance=instance, raise_on_error=False)
        if not result.success:
            _print_failures(result)
            return EXIT_FAILED
        print(f"run {result.run_id} recorded in {instance.root_directory}")
    held_back = _print_summary(paths["warehouse"])
    print(f"invoices: {paths['invoices']}")
    print(f"warehouse: {paths['warehouse']}")
    return EXIT_PARTIAL if held_back else EXIT_OK


def _instance():
    """The project's Dagster instance (DAGSTER_HOME, default .dagster/ here), so that `make dev`
    shows every run made from the command line."""
    import dagster as dg

    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_SETTINGS, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _print_summary(warehouse_path: Path) -> bool:
    """Every event's status, counted, and everything held back. True when something was held back."""
    import duckdb

    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        counts = con.execute("select status, count(*) from marts.event_pipeline_log group by status "
                             "order by count(*) desc, status").fetchall()
        problems = con.execute("select account_id, problem from raw.reference_problems "
                               "order by account_id nulls last, file_name, line_number").fetchall()
        rating = con.execute("select account_id, reason from billing.rating_holds order by account_id").fetchall()
        refused = con.execute("select problem, is_error from raw.event_load_problems").fetchall()
    finally:
        con.close()
    print("event statuses: " + (", ".join(f"{count:,} {status}" for status, count in counts) or "none"))
    for note, is_error in refused:
        if not is_error:
            print(f"note: {note}")
    held = [(account, problem) for account, problem in problems if account is not None] + rating
    set_aside = [problem for account, problem in problems if account is None]
    errors = [problem for problem, is_error in refused if is_error]
    if held:
        accounts = len({account for account, _ in held})
        print(f"held back, not billed in this run ({accounts} account(s)); fix the rows and run again:",
              file=sys.stderr)
        for account, reason in held:
            print(f"  {account}: {reason}", file=sys.stderr)
    if set_aside:
        print(f"set aside ({len(set_aside)} row(s) naming no known account):", file=sys.stderr)
        for problem in set_aside:
            print(f"  {problem}", file=sys.stderr)
    if errors:
        print(f"event files refused ({len(errors)}):", file=sys.stderr)
        for problem in errors:
            print(f"  {problem}", file=sys.stderr)
    return bool(held or set_aside or errors)


_EXCEPTION_PREFIX = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Failure|Interrupt)\w*: ")


def readable(message: str) -> str:
    """An error message without the exception class names Python and DuckDB put in front of it."""
    text = message.strip()
    while _EXCEPTION_PREFIX.match(text):
        text = _EXCEPTION_PREFIX.sub("", text, count=1).strip()
    return text


def _print_failures(result) -> None:
    import dagster as dg

    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            description = data.user_failure_data.description if data.user_failure_data else None
            error = data.error
            while error is not None and error.cause is not None:
                error = error.cause
            text = description or (readable(error.message) if error else "unknown error")
            lines = [line for line in text.strip().splitlines() if line.strip()]
            _error(f"{event.step_key} failed: {lines[0] if lines else 'unknown error'}")
            for line in lines[1:]:
                print(f"  {line.strip()}", file=sys.stderr)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                details = "; ".join(f"{key}: {value.value}" for key, value in evaluation.metadata.items())
                _error(f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} failed ({details})")
    _error("run failed: nothing was committed or published; fix what is named above and run again")


def _demo(as_of: date | None) -> int:
    from dagster_project.demo import DEMO_AS_OF, ensure_demo_data

    paths = {flag: _resolve(flag, None) for flag in PATH_FLAGS}
    if ensure_demo_data(paths["data"]):
        print(f"generated the demo dataset in {paths['data']}")
    return _run(paths, as_of or DEMO_AS_OF)


if __name__ == "__main__":
    sys.exit(main())
