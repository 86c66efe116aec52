"""`tally` commands. `run` and `demo` execute the Dagster job of definitions.py in-process: the
same assets, checks and code path as `dagster dev` and the schedule, never a second pipeline."""
from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from dagster_project.catalog import ConfigError, load_catalog

PATH_FLAGS = {
    "config": ("TALLY_CONFIG_DIR", "pricing_config"),
    "data": ("TALLY_DATA_DIR", "seeds"),
    "warehouse": ("TALLY_WAREHOUSE", "warehouse/tally.duckdb"),
    "invoices": ("TALLY_INVOICES_DIR", "invoices"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tally", description="Warehouse-native usage-based billing.")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="validate the pricing configuration")
    validate.add_argument("--config", help="configuration directory (TALLY_CONFIG_DIR, default pricing_config/)")

    run = commands.add_parser("run", help="load, meter, rate, invoice, check and publish up to --as-of")
    _add_path_flags(run)
    run.add_argument("--as-of", type=date.fromisoformat, help="the run's date, YYYY-MM-DD (default: today, UTC)")

    entitlements = commands.add_parser("entitlements", help="what an account may use, from the warehouse")
    entitlements.add_argument("account_id")
    entitlements.add_argument("--at", type=_utc_timestamp, help="ISO-8601 timestamp (default: now, UTC)")
    entitlements.add_argument("--warehouse", help="TALLY_WAREHOUSE, default warehouse/tally.duckdb")

    demo = commands.add_parser("demo", help="generate the demo dataset if absent and run the pipeline on it")
    demo.add_argument("--as-of", type=date.fromisoformat, help="the run's date (default: the demo's own date)")

    args = parser.parse_args(argv)
    if args.command == "validate":
        return _validate(_resolve("config", args.config))
    if args.command == "entitlements":
        return _entitlements(args.account_id, args.at or datetime.now(UTC).replace(tzinfo=None),
                             _resolve("warehouse", args.warehouse))
    if args.command == "run":
        paths = {flag: _resolve(flag, getattr(args, flag)) for flag in PATH_FLAGS}
        return _run(paths, args.as_of or datetime.now(UTC).date())
    return _demo(args.as_of)


def _utc_timestamp(text: str) -> datetime:
    """ISO 8601; an offset is converted to UTC, none means UTC (SPEC 3.2). Returned naive, in UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _entitlements(account_id: str, at: datetime, warehouse_path: Path) -> int:
    import duckdb

    from dagster_project.entitlements import EntitlementLookupError, access_at, describe

    if not warehouse_path.exists():
        print(f"no warehouse at {warehouse_path}: run `tally run` first", file=sys.stderr)
        return 1
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        print(describe(access_at(con, account_id, at)))
    except EntitlementLookupError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0


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
        return 1
    print(f"{config_dir}: valid ({len(catalog.price_plans)} price plans, {len(catalog.usage_meters)} usage meters, "
          f"{len(catalog.billable_items)} billable items)")
    return 0


def _print_problems(exc: ConfigError) -> None:
    print(f"invalid configuration ({len(exc.problems)} problem(s)):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def _run(paths: dict[str, Path], as_of: date) -> int:
    try:
        catalog = load_catalog(paths["config"])
    except ConfigError as exc:
        _print_problems(exc)
        return 1
    for flag, (variable, _) in PATH_FLAGS.items():
        os.environ[variable] = str(paths[flag])
    print(f"tally run as of {as_of}: config {paths['config']}, data {paths['data']}", flush=True)

    import dagster as dg

    from dagster_project.definitions import PIPELINE_JOB, defs
    from dagster_project.defs.partitions import run_config, run_tags
    from dagster_project.defs.progress import PROGRESS_VARIABLE

    job = defs.resolve_job_def(PIPELINE_JOB)
    config = run_config(as_of)
    # Dagster's console stays quiet: steps print progress lines, failures are summarized below.
    config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    os.environ[PROGRESS_VARIABLE] = "1"
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(run_config=config, tags=run_tags(as_of, catalog), instance=instance,
                                    raise_on_error=False)
    if not result.success:
        _print_failures(result)
        return 1
    _print_statuses(paths["warehouse"])
    print(f"invoices: {paths['invoices']}")
    print(f"warehouse: {paths['warehouse']}")
    return 0


def _print_statuses(warehouse_path: Path) -> None:
    """Every event's status, counted (marts.event_pipeline_log has one row per event)."""
    import duckdb

    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        counts = con.execute("select status, count(*) from marts.event_pipeline_log group by status "
                             "order by count(*) desc, status").fetchall()
    finally:
        con.close()
    summary = ", ".join(f"{count} {status}" for status, count in counts) or "none"
    print(f"event statuses: {summary}")


def _print_failures(result) -> None:
    import dagster as dg

    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            cause = error.cause if error and error.cause else error
            print(f"failed: {event.step_key}: {cause.message.strip() if cause else 'unknown error'}",
                  file=sys.stderr)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                print(f"failed check: {evaluation.check_name} on {evaluation.asset_key.to_user_string()}",
                      file=sys.stderr)
    print("run failed: the steps after the failure did not run, and nothing they publish changed",
          file=sys.stderr)


def _demo(as_of: date | None) -> int:
    from dagster_project.demo import DEMO_AS_OF, ensure_demo_data

    paths = {flag: _resolve(flag, None) for flag in PATH_FLAGS}
    if ensure_demo_data(paths["data"]):
        print(f"generated the demo dataset in {paths['data']}")
    return _run(paths, as_of or DEMO_AS_OF)


if __name__ == "__main__":
    sys.exit(main())
