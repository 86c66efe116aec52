"""`tally` commands. `run`, `demo` and `void` execute the Dagster job of definitions.py in-process:
the same assets, checks and code path as `dagster dev` and the schedule, never a second pipeline.

Exit codes: 0 done; 1 failed (nothing published, nothing committed: fix what the message names
and run again); 2 wrong usage; 3 done, but input was held back (accounts not billed, rows set
aside, event files refused: listed); 4 another run holds the warehouse; 5 done, billed and
published, but some documents are not delivered yet (listed; the next run retries them, and
`tally deliver` does at once). 3 wins over 5: input held back means billing itself is incomplete.
"""
from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import sys
import threading
from contextlib import nullcontext
from datetime import UTC, date, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

from dagster_project.catalog import ConfigError, load_catalog, load_catalog_once
from dagster_project.long_lived import long_lived_objects

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL, EXIT_BUSY, EXIT_UNDELIVERED = 0, 1, 2, 3, 4, 5
DELIVERY_FLAGS = ("config", "warehouse", "invoices")
PATH_FLAGS = {
    "config": ("TALLY_CONFIG_DIR", "pricing_config"),
    "data": ("TALLY_DATA_DIR", "seeds"),
    "warehouse": ("TALLY_WAREHOUSE", "warehouse/tally.duckdb"),
    "invoices": ("TALLY_INVOICES_DIR", "invoices"),
}
INSTANCE_SETTINGS = Path(__file__).with_name("dagster.yaml")


def console() -> None:
    """The `tally` command. After main() it shuts down as the interpreter does -- waits for the
    threads still working, runs the exit handlers (logging, child processes, file locks, dbt's
    connections) -- and ends the process without tearing down the interpreter's heap: freeing
    dbt's manifest and Dagster's definitions object by object took a second after every run, a
    tenth of a daily run's fixed cost."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # a reader that went away, a stream closed
            pass
    threading._shutdown()
    atexit._run_exitfuncs()
    os._exit(code)


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
    if args.command == "void":
        paths = {flag: _resolve(flag, getattr(args, flag)) for flag in PATH_FLAGS}
        return _void(paths, args.invoice_number, args.reason, args.as_of or datetime.now(UTC).date())
    if args.command == "export":
        return _export(args.month, args.format, args.output, _resolve("warehouse", args.warehouse))
    if args.command == "deliver":
        paths = {flag: _resolve(flag, getattr(args, flag, None)) for flag in PATH_FLAGS}
        return _deliver(paths, retry_exhausted=args.retry)
    if args.command == "pdfs":
        return _pdfs({flag: _resolve(flag, getattr(args, flag, None)) for flag in PATH_FLAGS})
    return _demo(args.as_of)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="show dbt's log and Dagster's")
    parser = argparse.ArgumentParser(prog="tally", description="Warehouse-native usage-based billing.",
                                     parents=[common],
                                     epilog="exit codes: 0 done, 1 failed (nothing published), 2 wrong usage, "
                                            "3 done with input held back (listed), 4 warehouse busy, "
                                            "5 done but some documents not delivered yet (listed)")
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

    void = commands.add_parser("void", parents=[common],
                               help="void a final invoice: a credit note for it, a fresh invoice for its cycle, "
                                    "its credits and wallet money returned; then the run publishes them")
    void.add_argument("invoice_number", help="the final invoice's number (or its invoice id)")
    void.add_argument("--reason", required=True, help="why, shown on the credit note and the fresh invoice")
    _add_path_flags(void)
    void.add_argument("--as-of", type=date.fromisoformat,
                      help="the run's date, YYYY-MM-DD, the issue date of the note and the fresh invoice "
                           "(default: today, UTC)")

    export = commands.add_parser("export", parents=[common],
                                 help="a month's final invoices and notes with their lines, from the published "
                                      "warehouse")
    export.add_argument("what", choices=["invoices"])
    export.add_argument("--month", type=_month, required=True, help="the month of issue, YYYY-MM")
    export.add_argument("--format", choices=["csv", "json"], default="csv", help="csv (one row per line) or json")
    export.add_argument("--output", help="file to write (default: standard output)")
    export.add_argument("--warehouse", help="TALLY_WAREHOUSE, default warehouse/tally.duckdb")

    deliver = commands.add_parser("deliver", parents=[common],
                                  help="deliver the final invoices and notes not delivered yet (failed, interrupted "
                                       "or never sent) through the channels of billing.yaml, then publish the "
                                       "delivery log")
    for flag in DELIVERY_FLAGS:
        variable, default = PATH_FLAGS[flag]
        deliver.add_argument(f"--{flag}", help=f"{variable}, default {default}")
    deliver.add_argument("--retry", action="store_true",
                         help="also retry the deliveries that failed delivery.max_attempts times, which runs no "
                              "longer retry")

    pdfs = commands.add_parser("pdfs", parents=[common],
                               help="typeset the PDFs of the published invoices and notes that have none or an "
                                    "outdated one (the job tally_pdfs; `tally run` does not wait for them)")
    for flag in DELIVERY_FLAGS:
        variable, default = PATH_FLAGS[flag]
        pdfs.add_argument(f"--{flag}", help=f"{variable}, default {default}")

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
    """ISO 8601; an offset is converted to UTC, none means UTC (README). Returned naive, in UTC."""
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


def _start(paths: dict[str, Path], command: str):
    """What every command that runs the pipeline does first: load the configuration, check the
    data directory, take the warehouse's lock. (catalog, EXIT_OK) once the lock is held, else
    (None, the exit code) with the problem printed."""
    from dagster_project import run_lock
    from dagster_project.ingestion.reference_data import DataDirectoryError, check_data_directory

    try:
        catalog = load_catalog_once(paths["config"])
    except ConfigError as exc:
        _print_problems(exc)
        return None, EXIT_FAILED
    try:
        check_data_directory(paths["data"])
    except DataDirectoryError as exc:
        _error(f"{exc}; nothing was run")
        return None, EXIT_FAILED
    try:
        run_lock.acquire(paths["warehouse"], command)
    except run_lock.WarehouseBusy as exc:
        _error(str(exc))
        return None, EXIT_BUSY
    except OSError as exc:
        _error(f"cannot use the warehouse {paths['warehouse']}: {exc.strerror or exc}")
        return None, EXIT_FAILED
    return catalog, EXIT_OK


def _run(paths: dict[str, Path], as_of: date, months: list[str] | None = None, full_refresh: bool = False) -> int:
    from dagster_project import run_lock
    from dagster_project.publication import publication_for
    from dagster_project.run_inputs import input_fingerprint, unchanged_since

    catalog, code = _start(paths, f"tally run --as-of {as_of}")
    if catalog is None:
        return code
    try:
        fingerprint = input_fingerprint(paths, as_of, months, full_refresh)
        published = publication_for(paths["warehouse"]).database
        last_run = unchanged_since(paths["warehouse"], fingerprint, paths["invoices"], published)
        if last_run is not None:
            print(f"tally run as of {as_of}: nothing new since run {last_run} (same configuration, data, events and "
                  f"date); invoices and warehouse are up to date")
            # failed deliveries are retried by the next run, even one with nothing new to bill
            if _deliveries_due(paths, catalog) and _execute_delivery(paths, False, fingerprint) == EXIT_FAILED:
                return EXIT_FAILED
            held_back = _print_summary(paths["warehouse"])
            return _outcome(held_back, _print_undelivered(paths, catalog))
        return _execute(paths, as_of, catalog, months, full_refresh, fingerprint)
    finally:
        run_lock.release(paths["warehouse"])


def _void(paths: dict[str, Path], reference: str, reason: str, as_of: date) -> int:
    """Record the void in the warehouse, then run the pipeline, which carries it out: the credit
    note and the fresh invoice go through the same checks and publication as every invoice. A
    refused void changes nothing; a run that fails withdraws it."""
    from dagster_project import billing_store as store
    from dagster_project import run_lock, warehouse
    from dagster_project.run_inputs import input_fingerprint

    catalog, code = _start(paths, f"tally void {reference} --as-of {as_of}")
    if catalog is None:
        return code
    try:
        if not paths["warehouse"].exists():
            _error(f"no invoice {reference}: nothing to void (no warehouse at {paths['warehouse']})")
            return EXIT_FAILED
        with warehouse.connect(paths["warehouse"], read_only=True) as con:
            try:
                invoice_id, number = store.check_voidable(con, reference)
            except store.VoidRefused as exc:
                _error(str(exc))
                return EXIT_FAILED
        with warehouse.connect(paths["warehouse"]) as con:
            warehouse.ensure_tables(con)
            store.request_void(con, invoice_id, number, reason)
        print(f"tally void {number}: {reason}", flush=True)
        code = _execute(paths, as_of, catalog, None, False, input_fingerprint(paths, as_of, None, False))
        with warehouse.connect(paths["warehouse"]) as con:
            outcome = store.void_outcome(con, invoice_id)
            if outcome is None and code == EXIT_FAILED:
                store.withdraw_void(con, invoice_id)
        if outcome is None:
            if code != EXIT_FAILED:
                print(f"{number} is not void yet: its account is held back (listed above); the next run that bills "
                      "it voids it")
            return code
        note, fresh = outcome
        print(f"{number} voided by credit note {note}"
              + (f"; invoice {fresh} issued in its place" if fresh else "; its cycle no longer exists: no new invoice"))
        return code
    finally:
        run_lock.release(paths["warehouse"])


def _export(month: str, output_format: str, output: str | None, warehouse_path: Path) -> int:
    import duckdb

    from dagster_project.export import as_csv, as_json, month_documents
    from dagster_project.publication import publication_for

    published = publication_for(warehouse_path).database
    if not published.exists():
        _error(f"no published warehouse at {published}: run `tally run` first")
        return EXIT_FAILED
    first_day = date.fromisoformat(f"{month}-01")
    con = duckdb.connect(str(published), read_only=True)
    try:
        documents = month_documents(con, first_day)
    finally:
        con.close()
    text = as_csv(documents) if output_format == "csv" else as_json(first_day, documents)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"{len(documents)} invoice(s) and note(s) of {month} written to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _execute(paths: dict[str, Path], as_of: date, catalog, months: list[str] | None, full_refresh: bool,
             fingerprint: str) -> int:
    for flag, (variable, _) in PATH_FLAGS.items():
        os.environ[variable] = str(paths[flag])
    print(f"tally run as of {as_of}: config {paths['config']}, data {paths['data']}", flush=True)

    definitions = _definitions()
    from dagster_project.defs.partitions import (
        BACKFILL_TAG,
        INPUTS_TAG,
        add_billing_months,
        billing_range,
        run_config,
        run_tags,
    )
    from dagster_project.defs.progress import PROGRESS_VARIABLE, is_verbose

    job = definitions.defs.resolve_job_def(definitions.PIPELINE_JOB)
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
    undelivered = _print_undelivered(paths, catalog)
    _print_pdfs_due(paths)
    print(f"invoices: {paths['invoices']}")
    print(f"warehouse: {paths['warehouse']}")
    return _outcome(held_back, undelivered)


def _outcome(held_back: bool, undelivered: bool) -> int:
    if held_back:
        return EXIT_PARTIAL
    return EXIT_UNDELIVERED if undelivered else EXIT_OK


@cache
def _definitions():
    """definitions.py, imported once per process as objects kept to the end of it (a freeze per
    job would also keep the garbage of the jobs before)."""
    with long_lived_objects():
        from dagster_project import definitions
    return definitions


def _instance():
    """The project's Dagster instance (DAGSTER_HOME, default .dagster/ here), so that `make dev`
    shows every run made from the command line."""
    import dagster as dg

    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(INSTANCE_SETTINGS, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    # the first instance of a process imports its storage (this project's event log storage, with
    # SQLAlchemy and Alembic): modules kept to the end; an instance is closed after its job, so a
    # later one, which imports nothing, is built as any other object
    loads_storage = "dagster_project.event_log_storage" not in sys.modules
    with long_lived_objects() if loads_storage else nullcontext():
        return dg.DagsterInstance.get()


def _print_summary(warehouse_path: Path) -> bool:
    """Every event's status, counted, and everything held back. True when something was held back."""
    import duckdb

    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        # int_events holds the statuses of marts.event_pipeline_log, which joins invoices to every event
        counts = con.execute("select status, count(*) from intermediate.int_events group by status "
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


def _print_failures(result, closing: str = "run failed: nothing was committed or published; fix what is named "
                                           "above and run again") -> None:
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
    published = any(event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key == "published_invoices"
                    for event in result.all_events)
    _error("run failed after its invoices were committed and published (they stand); fix what is named above "
           "and run again to finish the rest" if published else closing)


def _deliver(paths: dict[str, Path], retry_exhausted: bool) -> int:
    """Delivery without billing: the job tally_delivery (delivery, the delivery log, the published
    warehouse) on what earlier runs billed."""
    from dagster_project import run_lock, warehouse
    from dagster_project.publication import publication_for
    from dagster_project.run_inputs import recorded_fingerprint, unchanged_since

    try:
        catalog = load_catalog_once(paths["config"])
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_FAILED
    delivery = catalog.billing.delivery
    if delivery.email is None and delivery.webhook is None:
        print("tally deliver: no delivery channel in billing.yaml (`delivery: email` or `webhook`): nothing to send")
        return EXIT_OK
    if not paths["warehouse"].exists():
        _error(f"nothing to deliver: no warehouse at {paths['warehouse']}; run `tally run` first")
        return EXIT_FAILED
    try:
        run_lock.acquire(paths["warehouse"], "tally deliver" + (" --retry" if retry_exhausted else ""))
    except run_lock.WarehouseBusy as exc:
        _error(str(exc))
        return EXIT_BUSY
    except OSError as exc:
        _error(f"cannot use the warehouse {paths['warehouse']}: {exc.strerror or exc}")
        return EXIT_FAILED
    try:
        with warehouse.connect(paths["warehouse"], read_only=True) as con:
            billed = warehouse.table_exists(con, "billing", "delivery_actions")
        if not billed:
            _error(f"nothing to deliver: {paths['warehouse']} was not billed by this version; run `tally run` first")
            return EXIT_FAILED
        # delivery leaves the last run's inputs and results as they were: a `tally run` on the same
        # inputs can still stop at once, provided they were intact before
        fingerprint = recorded_fingerprint(paths["warehouse"])
        published = publication_for(paths["warehouse"]).database
        if fingerprint and unchanged_since(paths["warehouse"], fingerprint, paths["invoices"], published) is None:
            fingerprint = None
        print(f"tally deliver: config {paths['config']}, warehouse {paths['warehouse']}", flush=True)
        if _execute_delivery(paths, retry_exhausted, fingerprint) == EXIT_FAILED:
            return EXIT_FAILED
        return EXIT_UNDELIVERED if _print_undelivered(paths, catalog) else EXIT_OK
    finally:
        run_lock.release(paths["warehouse"])


def _deliveries_due(paths: dict[str, Path], catalog) -> bool:
    from dagster_project import warehouse
    from dagster_project.delivery import worklist

    with warehouse.connect(paths["warehouse"], read_only=True) as con:
        return bool(worklist(con, catalog.billing, paths["invoices"]).due)


def _execute_delivery(paths: dict[str, Path], retry_exhausted: bool, fingerprint: str | None) -> int:
    """The job tally_delivery, in-process; fingerprint: the inputs of the run whose results these are."""
    from dagster_project.defs.partitions import INPUTS_TAG

    return _execute_job(paths, _definitions().DELIVERY_JOB,
                        {"resources": {"delivery_options": {"config": {"retry_exhausted": retry_exhausted}}}},
                        {INPUTS_TAG: fingerprint} if fingerprint else {},
                        "delivery failed; billing and the published documents are as they were: fix what is named "
                        "above and run `tally deliver`")


def _execute_job(paths: dict[str, Path], job_name: str, config: dict, tags: dict, failed: str) -> int:
    """One of the definitions' jobs in-process, recorded in the project's instance; its failures printed."""
    for flag, (variable, _) in PATH_FLAGS.items():
        os.environ[variable] = str(paths[flag])

    from dagster_project.defs.progress import PROGRESS_VARIABLE, is_verbose

    defs = _definitions().defs

    if not is_verbose():
        config = {**config, "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    os.environ[PROGRESS_VARIABLE] = "bar" if sys.stdout.isatty() else "lines"
    with _instance() as instance:
        result = defs.resolve_job_def(job_name).execute_in_process(run_config=config, tags=tags, instance=instance,
                                                                   raise_on_error=False)
        if not result.success:
            _print_failures(result, failed)
            return EXIT_FAILED
        print(f"run {result.run_id} recorded in {instance.root_directory}")
    return EXIT_OK


def _pdfs(paths: dict[str, Path]) -> int:
    """The job tally_pdfs: the PDFs of what the runs published, typeset after them."""
    from dagster_project import run_lock, warehouse

    try:
        load_catalog_once(paths["config"])
    except ConfigError as exc:
        _print_problems(exc)
        return EXIT_FAILED
    if not paths["warehouse"].exists():
        _error(f"no documents to typeset: no warehouse at {paths['warehouse']}; run `tally run` first")
        return EXIT_FAILED
    try:
        run_lock.acquire(paths["warehouse"], "tally pdfs")
    except run_lock.WarehouseBusy as exc:
        _error(str(exc))
        return EXIT_BUSY
    except OSError as exc:
        _error(f"cannot use the warehouse {paths['warehouse']}: {exc.strerror or exc}")
        return EXIT_FAILED
    try:
        with warehouse.connect(paths["warehouse"], read_only=True) as con:
            billed = warehouse.table_exists(con, "billing", "rendered_pdfs")
        if not billed:
            _error(f"no documents to typeset: {paths['warehouse']} was not billed by this version; run `tally run`")
            return EXIT_FAILED
        print(f"tally pdfs: warehouse {paths['warehouse']}, invoices {paths['invoices']}", flush=True)
        return _execute_job(paths, _definitions().PDF_JOB, {}, {},
                            "typesetting failed; the invoices, their JSON and HTML and the PDFs written before are as "
                            "they were: run `tally pdfs` again")
    finally:
        run_lock.release(paths["warehouse"])


_UNDELIVERED_SHOWN = 20


def _print_undelivered(paths: dict[str, Path], catalog) -> bool:
    """The documents not delivered through a configured channel, on stderr. True when there are any."""
    from dagster_project import warehouse
    from dagster_project.delivery import undelivered

    with warehouse.connect(paths["warehouse"], read_only=True) as con:
        missing = undelivered(con, catalog.billing, paths["invoices"])
    if not missing:
        return False
    print(f"not delivered ({len(missing)}); the next run retries them, `tally deliver` does at once:", file=sys.stderr)
    for item in missing[:_UNDELIVERED_SHOWN]:
        if item.last_status == "sending":
            state = "interrupted while sending; sent again with the same idempotency key"
        elif item.gave_up:
            state = (f"failed {item.failures} times, no longer retried by runs (`tally deliver --retry`): "
                     f"{item.last_error}")
        elif item.last_status == "failed":
            state = f"failed {item.failures} time(s): {item.last_error}"
        else:
            state = "not sent yet"
        print(f"  {item.invoice_number} ({item.invoice_id}) by {item.channel}: {state}", file=sys.stderr)
    if len(missing) > _UNDELIVERED_SHOWN:
        print(f"  ... and {len(missing) - _UNDELIVERED_SHOWN} more (marts.delivery_log)", file=sys.stderr)
    return True


def _print_pdfs_due(paths: dict[str, Path]) -> None:
    from dagster_project import billing_store as store
    from dagster_project import warehouse

    with warehouse.connect(paths["warehouse"], read_only=True) as con:
        due = store.documents_without_pdf(con, str(paths["invoices"]))
    if due:
        print(f"pdfs: {due:,} document(s) without an up-to-date PDF; `tally pdfs` typesets them")


def _demo(as_of: date | None) -> int:
    from dagster_project.demo import DEMO_AS_OF, ensure_demo_data

    paths = {flag: _resolve(flag, None) for flag in PATH_FLAGS}
    if ensure_demo_data(paths["data"]):
        print(f"generated the demo dataset in {paths['data']}")
    code = _run(paths, as_of or DEMO_AS_OF)
    if code in (EXIT_OK, EXIT_PARTIAL, EXIT_UNDELIVERED):
        pdfs = _pdfs(paths)
        return code if pdfs == EXIT_OK else pdfs
    return code


if __name__ == "__main__":
    sys.exit(main())
