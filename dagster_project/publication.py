"""The published warehouse: what readers (BI tools, notebooks, `tally entitlements`) open.

The pipeline's DuckDB file is the pipeline's alone: DuckDB allows one writer, and a reader that
opens it (most BI tools open read-write) locks runs out. So after each successful run the marts
are published as Parquet files plus a small DuckDB file of views over them,
`<warehouse>.published.duckdb`, replaced atomically (a rename). A reader opens it read-only: it
never blocks a run, never sees half a run, and keeps reading the previous publication while a
run writes the next one. The files of the previous publication are kept, so a connection opened
before a swap can still read; older ones are removed.

A table whose rows did not change keeps its file (a fingerprint of its rows decides; a table
whose dbt model was built from the same inputs as at the last publication is not even hashed:
billing.dbt_node_builds). The event
log, the one table that grows with events, is partitioned by load batch and account bucket and
rewritten only where the run metered events (int_events.metered_run), and fct_usage_daily is a
file per day: a daily run writes its days, not the month so far nor the history; the tables of a
row per cycle are a file per month (MONTHLY_TABLES). The views carry the
warehouse's descriptions of what they copy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.warehouse import scalar

EVENT_BUCKETS = 16


@dataclass(frozen=True)
class DailyTable:
    """A table that grows with the days, published a file per day, so that a daily run rewrites
    the days it changed, not the month so far: fct_usage_daily at 100M events is 14M rows a month
    and took 6 s of every daily run to write whole, and a file per month grew from 1.8 s to 2.5 s of
    the publication over ten daily runs at 10M. Its rows are those of `rows`, an incremental table
    whose rows carry the metering run that wrote them, joined to the small tables `also_reads`
    (the dbt model reads nothing else: tests/test_incremental.py). A day's stamp is its count of
    rows and latest metered_run, with the relation's definition and the small tables' rows: no run
    adds or removes a row without changing it. Only the days whose stamp changed are hashed
    (hashing all of them was 1 s of a daily run at 10M events), and a day whose hash is the one
    published keeps its file."""
    day_column: str
    rows: str
    also_reads: tuple[str, ...]


DAILY_TABLES = {"fct_usage_daily": DailyTable("usage_date", "intermediate.int_usage_daily",
                                              ("staging.stg_config__usage_meters",))}
# Tables with a row per cycle, which grow with every month of history, are published a folder per
# month of their period_start_date: a run rewrites the months it changed (a daily run, the open
# month's), not the history; they are hashed whole, which is ten times cheaper than writing.
MONTHLY_TABLES = {name: "period_start_date"
                  for name in ("fct_meter_usage", "fct_billing_cycles", "fct_entitlement_usage", "fct_invoice_lines")}
# Every other table is one file (part ALL).
ALL = "all"
# published beside the marts (every base table of schema marts is published as it is);
# fct_usage_daily is a view of int_usage_daily, which keeps the days once, and fct_billing_cycles
# one of int_billing_cycles
_OTHER_COPIES = {"fct_usage_daily": "marts.fct_usage_daily", "fct_billing_cycles": "marts.fct_billing_cycles",
                 "held_accounts": "staging.stg_input_problems__held_accounts",
                 "plan_entitlements": "config.plan_entitlements", "usage_meters": "config.usage_meters"}
_PARTITION_FLUSH_ROWS = 16_384
MANIFEST = "manifest.json"
# the event log's columns as published; the reason of a held account's events and the invoice
# come from the views, as in the warehouse (marts.event_pipeline_log)
_EVENT_COLUMNS = ("event_row_id, event_id, file_name, line_number, batch_id, schema_name, account_id, event_at, "
                  "status, reason, cycle_id, price_plan, meter_values")


@dataclass(frozen=True)
class Publication:
    database: Path      # the DuckDB file of views readers open
    directory: Path     # its Parquet files and manifest


@dataclass(frozen=True)
class PublicationReport:
    tables: int
    tables_written: int     # the others did not change and keep their files
    event_partitions_written: int
    event_partitions: int
    generation: int


def publication_for(warehouse: Path) -> Publication:
    base = warehouse.with_suffix("")
    return Publication(database=base.with_name(base.name + ".published.duckdb"),
                       directory=base.with_name(base.name + ".published"))


def bucket_sql(column: str) -> str:
    """The account bucket of the event log's files (readers filter on it to read one bucket)."""
    return f"hash({column}) % {EVENT_BUCKETS}"


def publish(con: duckdb.DuckDBPyConnection, publication: Publication) -> PublicationReport:
    """Write this run's publication and swap it in; con is the pipeline's warehouse."""
    directory = publication.directory
    directory.mkdir(parents=True, exist_ok=True)
    recorded = _read_manifest(directory)
    # what the previous publication holds counts only if it was published from this warehouse:
    # metered_run starts again at 1 in a new one, and files of the old one would look current
    warehouse_id = scalar(con, "select id from billing.warehouse_identity")
    previous = recorded if recorded.get("warehouse_id") == warehouse_id else {}
    generation = recorded.get("generation", 0) + 1
    folder = directory / f"g{generation:06d}"
    shutil.rmtree(folder, ignore_errors=True)  # a run that died while writing it
    folder.mkdir()

    tables, fingerprints, stamps = {}, {}, {}
    built_from = _built_from(con)
    copies = {name: f"marts.{name}" for (name,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' "
        "and table_type = 'BASE TABLE' order by 1").fetchall()} | _OTHER_COPIES
    for name, relation in copies.items():
        sql = f"select * from {relation}"
        part = _part_expression(name)
        kept_files = _files(previous, name)
        kept_fingerprints = previous["fingerprints"][name] if kept_files else {}  # written with the files
        # a part whose rows did not change keeps its file: hashing is ten times cheaper than writing
        daily = DAILY_TABLES.get(name)
        if daily:
            stamps[name] = _day_stamps(con, relation, daily)
            kept_stamps = previous.get("stamps", {}).get(name, {}) if kept_files else {}
            fingerprints[name] = {day: kept_fingerprints[day] for day, stamp in stamps[name].items()
                                  if kept_stamps.get(day) == stamp and day in kept_fingerprints}
            restamped = sorted(set(stamps[name]) - set(fingerprints[name]))
            if restamped:
                fingerprints[name] |= _fingerprints(con, sql, part, _days_filter(daily, restamped))
        elif (model := built_from.get(relation.rsplit(".", 1)[-1])) and kept_files \
                and previous.get("built_from", {}).get(name) == model:
            fingerprints[name] = kept_fingerprints  # built from what it was built from when published
        else:
            fingerprints[name] = _fingerprints(con, sql, part)
        if not fingerprints[name]:
            fingerprints[name] = {ALL: "empty"}  # an empty table is still one (empty) file with its columns
        tables[name], to_write = {}, []
        for key, fingerprint in sorted(fingerprints[name].items()):
            kept = kept_files.get(key)
            if kept and kept_fingerprints.get(key) == fingerprint and Path(kept).exists():
                tables[name][key] = kept
            else:
                to_write.append(key)
        if to_write == [ALL]:
            path = folder / name / f"{ALL}.parquet"
            path.parent.mkdir(exist_ok=True)
            con.execute(f"copy ({sql}) to '{path}' (format parquet)")
            tables[name][ALL] = str(path)
        elif to_write:
            # one write of every changed day (month), a folder each: a part's own query would scan
            # the table once per part, and a full refresh changes them all
            where = _days_filter(daily, to_write) if daily else f"{part} in ({', '.join(map(_literal, to_write))})"
            con.execute(f"set partitioned_write_flush_threshold = {_PARTITION_FLUSH_ROWS}")
            con.execute(f"copy (select *, {part} as part from ({sql}) as t where {where}) "
                        f"to '{folder / name}' (format parquet, partition_by (part))")
            for key in to_write:
                tables[name][key] = str(folder / name / f"part={key}")

    published_run = previous.get("metered_run", 0)
    partitions = dict(previous.get("event_partitions", {}))
    # literals, not parameters: DuckDB then skips the row groups of earlier runs and batches unread
    changed = con.execute(f"select distinct batch_id, {bucket_sql('account_id')} from intermediate.int_events "
                          f"where metered_run > {int(published_run)}").fetchall()
    if changed:
        con.execute("create or replace temp table changed_partitions (batch_id integer, bucket ubigint)")
        con.executemany("insert into changed_partitions values (?, ?)", changed)
        batches = ", ".join(str(int(batch_id)) for batch_id in sorted({batch_id for batch_id, _ in changed}))
        # a partition's rows are buffered until there are this many: at DuckDB's default (524,288)
        # the event log of 100M events took 99 s to write, at this threshold 60 s; zstd writes it
        # as fast as the default snappy and 43% smaller (10M events: 190 MB, not 336 MB)
        con.execute(f"set partitioned_write_flush_threshold = {_PARTITION_FLUSH_ROWS}")
        con.execute(f"""
            copy (
                select {_EVENT_COLUMNS}, {bucket_sql('account_id')} as bucket
                from intermediate.int_events
                where batch_id in ({batches})
                  and (batch_id, {bucket_sql('account_id')}) in (select (batch_id, bucket) from changed_partitions)
            ) to '{folder / "events"}' (format parquet, compression zstd, partition_by (batch_id, bucket))""")
        for batch_id, bucket in changed:
            partitions[f"{batch_id}/{bucket}"] = str(folder / "events" / f"batch_id={batch_id}" / f"bucket={bucket}")
    metered_run = scalar(con, "select coalesce(max(metered_run), 0) from intermediate.int_events")

    staging = publication.database.with_name(publication.database.name + ".new")
    staging.unlink(missing_ok=True)
    _write_views(staging, tables, sorted(partitions.values()),
                 _descriptions(con, {**copies, "event_pipeline_log": "marts.event_pipeline_log"}))
    manifest = {"generation": generation, "warehouse_id": warehouse_id, "metered_run": metered_run, "tables": tables,
                "fingerprints": fingerprints, "stamps": stamps, "event_partitions": partitions,
                "built_from": {name: built_from.get(relation.rsplit(".", 1)[-1]) for name, relation in copies.items()},
                "previous_folder": recorded.get("folder"), "folder": str(folder)}
    (directory / (MANIFEST + ".new")).write_text(json.dumps(manifest, indent=1))
    os.replace(staging, publication.database)  # the swap readers see
    os.replace(directory / (MANIFEST + ".new"), directory / MANIFEST)
    _remove_unreferenced(directory, manifest, recorded)  # readers may still hold the one before
    written = sum(any(_generation_of(Path(path), directory) == folder for path in files.values())
                  for files in tables.values())
    return PublicationReport(tables=len(tables), tables_written=written, event_partitions_written=len(changed),
                             event_partitions=len(partitions), generation=generation)


def _part_expression(table: str) -> str:
    daily = DAILY_TABLES.get(table)
    if daily:
        return _day_expression(daily.day_column)
    if table in MONTHLY_TABLES:
        return _day_expression(MONTHLY_TABLES[table], "%Y-%m")
    return f"'{ALL}'"


def _day_expression(column: str, form: str = "%Y-%m-%d") -> str:
    return f"coalesce(strftime({column}, '{form}'), 'none')"


def _built_from(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each dbt model's fingerprint at its last build (defs/dbt/unchanged.py), by relation name:
    the same fingerprint, the same rows. Left out: those built every time (incremental models and
    what reads them), whose fingerprint is new at every build. Hashing the billing marts' rows
    whole grew with every month of history, although they change only when invoices do."""
    return {unique_id.rsplit(".", 1)[-1]: fingerprint for unique_id, fingerprint in con.execute(
        "select unique_id, fingerprint from billing.dbt_node_builds where unique_id like 'model.%' "
        "and fingerprint not like 'changed:%'").fetchall()}


def _fingerprints(con: duckdb.DuckDBPyConnection, sql: str, part: str, where: str = "true") -> dict[str, str]:
    """Each part's count of rows and sum of their hashes."""
    return {key: str(fingerprint) for key, *fingerprint in con.execute(
        f"select {part} as part, count(*), sum(hash(t)::hugeint) from ({sql}) as t where {where} "
        "group by part").fetchall()}


def _days_filter(daily: DailyTable, days: list[str]) -> str:
    """The rows of some days: their range as literals, which DuckDB checks against each row group's
    min and max (the rows of a daily run's days are its last row groups), then the days themselves."""
    column = daily.day_column
    dates = [day for day in days if day != "none"]
    ranged = (f"{column} >= date '{min(dates)}' and {column} <= date '{max(dates)}' and "
              f"strftime({column}, '%Y-%m-%d') in ({', '.join(repr(day) for day in dates)})") if dates else "false"
    return f"({ranged}{f' or {column} is null' if 'none' in days else ''})"


def _day_stamps(con: duckdb.DuckDBPyConnection, relation: str, daily: DailyTable) -> dict[str, str]:
    """Each day's stamp (DailyTable): its rows' count and latest metered_run, with the
    relation's definition and the small tables' rows."""
    schema, name = relation.split(".")
    definition = con.execute("select sql from duckdb_views() where database_name = current_database() "
                             "and schema_name = ? and view_name = ? union all select sql from duckdb_tables() "
                             "where database_name = current_database() and schema_name = ? and table_name = ?",
                             [schema, name, schema, name]).fetchall()
    small = [con.execute(f"select count(*), sum(hash(t)::hugeint) from {table} as t").fetchone()
             for table in daily.also_reads]
    context = hashlib.sha256(json.dumps([definition, small], default=str).encode()).hexdigest()
    # grouped by the date, then named: naming each of 5.7M rows' day took 0.25 s, grouping 0.03 s
    return {day: f"{count}/{latest_run}/{context}" for day, count, latest_run in con.execute(
        f"select {_day_expression('day')} as part, sum(day_rows), max(latest_run) from ("
        f"select {daily.day_column} as day, count(*) as day_rows, max(metered_run) as latest_run "
        f"from {daily.rows} group by day) group by part").fetchall()}


def _files(manifest: dict, table: str) -> dict[str, str]:
    """A published table's files by part (a publication written before tables had parts: none)."""
    files = manifest.get("tables", {}).get(table)
    return files if isinstance(files, dict) else {}


# the published relations that are no dbt model, so have no description in the warehouse
_PUBLICATION_DESCRIPTIONS = {
    "marts.events": "The event log as published, a Parquet folder per load batch and account bucket (column "
                    "bucket), with each event's meter values: what marts.event_pipeline_log reads.",
    "config.plan_entitlements": "One row per entitlement of each price plan (pricing_config/price_plans): its "
                                "feature (a billable item), the meter it counts on (NULL: not metered) and its "
                                "usage_limit.",
    "config.usage_meters": "One row per usage meter of pricing_config/usage_meters.yaml, as tally entitlements "
                           "reads it.",
}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _schema_of(name: str) -> str:
    """The publication's schema of a published table: its source's when that is config, else marts."""
    return "config" if _OTHER_COPIES.get(name, "").startswith("config.") else "marts"


def _descriptions(con: duckdb.DuckDBPyConnection, copies: dict[str, str]) -> str:
    """COMMENT statements that give each published view, and its columns, the description of the
    warehouse relation it copies (dbt writes them there, persist_docs), or the publication's own
    for the relations that are no dbt model: BI tools show them."""
    published = {relation: f'{_schema_of(name)}."{name}"' for name, relation in copies.items()}
    rows = con.execute("""
        select schema_name || '.' || table_name, null, comment from duckdb_tables()
        where database_name = current_database() and comment is not null
        union all
        select schema_name || '.' || view_name, null, comment from duckdb_views()
        where database_name = current_database() and comment is not null and not internal
        union all
        select schema_name || '.' || table_name, column_name, comment from duckdb_columns()
        where database_name = current_database() and comment is not null""").fetchall()
    statements = [f"comment on view {view} is {_literal(text)}" for view, text in _PUBLICATION_DESCRIPTIONS.items()]
    for relation, column, comment in rows:
        if relation in published:
            target = f'{published[relation]}."{column}"' if column else published[relation]
            statements.append(f"comment on {'column' if column else 'view'} {target} is {_literal(comment)}")
    return ";\n".join(statements)


def _write_views(path: Path, tables: dict[str, dict[str, str]], event_folders: list[str], descriptions: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema marts")
        con.execute("create schema config")
        for name, files in tables.items():
            schema = _schema_of(name)
            # a day of a DailyTable is a folder of files; its name (part=<day>) is no column of the table
            paths = sorted(path if path.endswith(".parquet") else f"{path}/*.parquet" for path in files.values())
            con.execute(f"create view {schema}.{name} as "
                        f"select * from read_parquet({paths!r}, hive_partitioning = false)")
        files = [f"{folder}/*.parquet" for folder in event_folders]
        source = (f"read_parquet({files!r}, hive_partitioning = true)" if files else
                  "(select * from (select null::bigint as event_row_id, null::varchar as event_id, null::varchar "
                  "as file_name, null::bigint as line_number, null::integer as batch_id, null::varchar as "
                  "schema_name, null::varchar as account_id, null::timestamp as event_at, null::varchar as status, "
                  "null::varchar as reason, null::varchar as cycle_id, null::varchar as price_plan, "
                  "null::struct(meter_name varchar, meter_value decimal(38, 9), distinct_value varchar)[] "
                  "as meter_values, null::ubigint as bucket) where false)")
        con.execute(f"create view marts.events as select * from {source}")
        con.execute("""
            create view marts.event_pipeline_log as
            select
                events.event_row_id, events.event_id, events.file_name, events.line_number, events.batch_id,
                events.schema_name, events.account_id, events.event_at, events.status,
                case when events.status = 'unknown_account' and held.account_id is not null
                     then 'account ''' || events.account_id || ''' is held back: ' || held.held_reason
                     else events.reason end as reason,
                case when events.status = 'metered'
                     then list_sort(list_transform(events.meter_values, lambda x: x.meter_name)) end as meter_names,
                events.cycle_id, events.price_plan,
                case when events.status = 'metered' then invoices.invoice_id end as invoice_id,
                case when events.status = 'metered' then invoices.invoice_number end as invoice_number,
                late.invoice_id as adjusted_by_invoice_id, late.invoice_number as adjusted_by_invoice_number
            from marts.events as events
            left join marts.fct_invoices as invoices on invoices.cycle_id = events.cycle_id and invoices.kind = 'cycle'
                and invoices.voided_by_invoice_number is null
            left join marts.fct_late_event_billing as late on events.status = 'late' and late.cycle_id = events.cycle_id
                and events.batch_id > late.after_batch and events.batch_id <= late.through_batch
            left join marts.held_accounts as held on held.account_id = events.account_id""")
        con.execute(descriptions)
        con.execute("checkpoint")
    finally:
        con.close()


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _remove_unreferenced(directory: Path, manifest: dict, previous: dict) -> None:
    """Keep the files the current and the previous publication read; remove the rest. A generation
    folder outlives its run while any of its files is read (the event log's partitions of a batch
    stay in the folder of the run that loaded it), so files are removed one by one, not only whole
    folders: every daily run replaces the files of the tables that changed, and those left inside
    kept folders grew the directory by a run's writes a day (24 MB at 10M events)."""
    paths = [path for publication in (manifest, previous) for table in publication.get("tables", {})
             for path in _files(publication, table).values()]
    paths += [*manifest["event_partitions"].values(), *previous.get("event_partitions", {}).values()]
    referenced = {Path(path) for path in paths}  # a file, or a folder of files (a day, an event partition)
    kept = {_generation_of(path, directory) for path in referenced}
    for folder in directory.glob("g*"):
        if not folder.is_dir():
            continue
        if folder not in kept:
            shutil.rmtree(folder, ignore_errors=True)
            continue
        walked = []
        for parent, folders, files in os.walk(folder):
            folders[:] = [name for name in folders if Path(parent, name) not in referenced]  # kept whole
            walked.append(parent)
            for name in files:
                if Path(parent, name) not in referenced:
                    Path(parent, name).unlink(missing_ok=True)
        for parent in reversed(walked[1:]):  # the folders emptied, deepest first
            if not os.listdir(parent):
                os.rmdir(parent)


def _generation_of(path: Path, directory: Path) -> Path:
    while path.parent != directory and path.parent != path:
        path = path.parent
    return path
