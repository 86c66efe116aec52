"""Incremental metering equals a full refresh: daily batches (with duplicates, invalid and late
events, and an account added along the way) metered one run at a time give exactly the marts and
the invoice files that rebuilding everything from raw events gives; a backfill of one month
changes nothing final."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from dagster_project import publication as publication_module
from dagster_project.defs.dbt import unchanged
from dagster_project.defs.dbt.runner import manifest_json
from dagster_project.demo import ensure_demo_data
from dagster_project.publication import DAILY_TABLES, MONTHLY_TABLES
from tests.conftest import ROOT, digests, run_tally

RUNS = ["2026-09-03", "2026-09-20", "2026-10-05", "2026-10-25", "2026-11-10"]
LATE_ACCOUNT = "acct_hooli_pay"  # missing from the reference data until the third run
MARTS = {
    "intermediate.int_events": "event_row_id",
    "intermediate.int_meter_usage": "meter_usage_id",
    "intermediate.int_usage_daily": "usage_daily_id",
    "marts.fct_meter_usage": "meter_usage_id",
    "marts.fct_usage_daily": "usage_daily_id",
    "marts.fct_entitlement_usage": "entitlement_usage_id",
    "marts.event_pipeline_log": "event_row_id",
    "marts.fct_invoice_lines": "invoice_line_id",
    "marts.fct_credit_ledger": "ledger_entry_id",
    "marts.fct_wallet_ledger": "ledger_entry_id",
    "marts.pricing_rule_log": "evaluation_id",
}


def snapshot(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        # metered_run says which run computed a row: bookkeeping, not a result
        tables = {name: con.execute(f"select * exclude (metered_run) from {name} order by {key}").fetchall()
                  if name in ("intermediate.int_events", "intermediate.int_usage_daily") else
                  con.execute(f"select * from {name} order by {key}").fetchall() for name, key in MARTS.items()}
        tables["marts.fct_invoices"] = con.execute(
            "select * exclude (computed_as_of) from marts.fct_invoices order by invoice_id").fetchall()
        return tables
    finally:
        con.close()


def statuses(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return dict(con.execute("select status, count(*) from marts.event_pipeline_log group by 1").fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """The demo company's events delivered in five batches, each run as of the day after."""
    workdir = tmp_path_factory.mktemp("daily")
    shutil.copytree(ROOT / "pricing_config", workdir / "config")
    data = workdir / "data"
    ensure_demo_data(data)
    events = sorted((json.loads(line) for path in sorted((data / "events").glob("*.jsonl"))
                     for line in path.read_text().splitlines() if line.strip()), key=lambda e: e["timestamp"])
    parquet = data / "events" / "storage_snapshots.parquet"
    shutil.move(parquet, workdir / "storage_snapshots.parquet")
    for path in (data / "events").glob("*.jsonl"):
        path.unlink()
    reference = {path.name: path.read_text() for path in data.glob("*.csv") if path.name != "customers.csv"}
    for name, text in reference.items():
        (data / name).write_text("".join(line + "\n" for line in text.splitlines() if LATE_ACCOUNT not in line))

    warehouse = workdir / "warehouse.duckdb"
    outputs = []
    previous = ""
    for number, as_of in enumerate(RUNS, start=1):
        batch = [e for e in events if previous <= e["timestamp"] < as_of]
        lines = [json.dumps(e) for e in batch]
        if number == 1:
            shutil.copy(workdir / "storage_snapshots.parquet", data / "events" / "storage_snapshots.parquet")
        if number == 2:  # a duplicate id repeated as is, and one with another payload; an unreadable line
            lines += [json.dumps(events[0]), json.dumps({**events[1], "attributes": {}}), "{not json"]
        if number == 3:
            for name, text in reference.items():
                (data / name).write_text(text)  # the account arrives: its earlier events are metered again
        if number == 5:  # events of August, final since early September: late
            lines += [json.dumps({**e, "id": e["id"] + "_late"}) for e in events[:5]]
        (data / "events" / f"batch_{number}.jsonl").write_text("\n".join(lines) + "\n")
        previous = as_of
        proc = run_tally("run", "--config", str(workdir / "config"), "--data", str(data), "--warehouse",
                         str(warehouse), "--invoices", str(workdir / "invoices"), "--as-of", as_of,
                         home=workdir / ".dagster")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout)
        # what each run published, for the test of what the publication keeps on disk
        shutil.copy(workdir / "warehouse.published" / "manifest.json", workdir / f"published_{number}.json")
    return workdir, outputs


def test_daily_runs_meter_incrementally_with_every_kind_of_event(daily):
    workdir, outputs = daily
    assert "(full refresh: first metering of this warehouse)" in outputs[0]
    assert all("(incremental)" in output for output in outputs[1:])
    # nodes whose inputs did not change are left out (the config's views, at least): that this
    # changes no result is the full refresh's test below, which builds every node
    assert "unchanged since they were built" not in outputs[0]
    assert all(re.search(r"dbt metering .*; [1-9]\d* unchanged since they were built", output)
               for output in outputs[1:])
    counts = statuses(workdir / "warehouse.duckdb")
    assert counts["late"] == 5 and counts["duplicate"] >= 3 and counts["invalid"] >= 2
    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        unknown = con.execute("select count(*) from marts.event_pipeline_log where account_id = ? "
                              "and status = 'unknown_account'", [LATE_ACCOUNT]).fetchall()[0][0]
        metered = con.execute("select count(*) from marts.event_pipeline_log where account_id = ? "
                              "and status = 'metered'", [LATE_ACCOUNT]).fetchall()[0][0]
        # the checkpoint replaces only the states that changed: what it holds is every current state
        recorded = con.execute("select account_id, state_hash from billing.metering_account_states "
                               "order by 1").fetchall()
        current = con.execute("select account_id, state_hash from intermediate.int_account_states "
                              "order by 1").fetchall()
    finally:
        con.close()
    assert unknown == 0 and metered > 0  # its early events were metered again when it arrived
    assert recorded == current and LATE_ACCOUNT in dict(recorded)


def published_against_pipeline(workdir) -> dict[str, int]:
    """Each mart of the pipeline (its views too: fct_usage_daily is one): the rows of the published
    relation missing from the pipeline's, and the other way round."""
    published = duckdb.connect(str(workdir / "warehouse.published.duckdb"), read_only=True)
    try:
        published.execute(f"attach '{workdir / 'warehouse.duckdb'}' as pipeline (read_only)")
        differences = {}
        for (name,) in published.execute("select table_name from information_schema.tables "
                                         "where table_catalog = 'pipeline' and table_schema = 'marts' "
                                         "order by 1").fetchall():
            ours, theirs = f"marts.{name}", f"pipeline.marts.{name}"
            differences[name] = sum(published.execute(
                f"select count(*) from (select * from {left} except all select * from {right})").fetchall()[0][0]
                for left, right in ((ours, theirs), (theirs, ours)))
        return differences
    finally:
        published.close()


def test_the_publication_holds_the_marts_and_a_daily_run_rewrites_only_the_days_it_changed(daily):
    workdir, _ = daily
    differences = published_against_pipeline(workdir)
    assert "fct_usage_daily" in differences and "fct_invoices" in differences
    assert {name: count for name, count in differences.items() if count} == {}
    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        days = [day for (day,) in con.execute(
            "select distinct strftime(usage_date, '%Y-%m-%d') from marts.fct_usage_daily order by 1").fetchall()]
        last_batch_days = [day for (day,) in con.execute(
            "select distinct strftime(event_at, '%Y-%m-%d') from intermediate.int_events "
            "where status = 'metered' and batch_id = (select max(batch_id) from intermediate.int_events) "
            "order by 1").fetchall()]
    finally:
        con.close()
    manifest = json.loads((workdir / "warehouse.published" / "manifest.json").read_text())
    parts = manifest["tables"]["fct_usage_daily"]
    current = f"g{manifest['generation']:06d}"
    assert manifest["generation"] == len(RUNS) and sorted(parts) == days
    # the last run's events (2026-10-25 to 2026-11-09) changed their days: only those were written
    written = [day for day, path in sorted(parts.items()) if current in path]
    assert written == last_batch_days and written[0] >= RUNS[-2] and written[-1] < RUNS[-1]
    assert days[0] < "2026-10" and len(days) > 2 * len(written)


def test_the_tables_of_a_row_per_cycle_are_published_a_month_each_and_rewritten_where_they_changed(daily):
    workdir, _ = daily
    manifest = json.loads((workdir / "warehouse.published" / "manifest.json").read_text())
    current = f"g{manifest['generation']:06d}"
    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        for name, column in MONTHLY_TABLES.items():
            months = [month for (month,) in con.execute(
                f"select distinct coalesce(strftime({column}, '%Y-%m'), 'none') from marts.{name} "
                "order by 1").fetchall()]
            assert sorted(manifest["tables"][name]) == months, name
        # the last run (as of 2026-11-10) changed the cycles of October and November only
        parts = manifest["tables"]["fct_meter_usage"]
        written = sorted(month for month, path in parts.items() if current in path)
        assert written == ["2026-10", "2026-11"] and len(parts) > len(written)
    finally:
        con.close()


def test_a_table_whose_model_was_built_from_the_same_inputs_keeps_its_published_files(daily):
    workdir, _ = daily
    manifests = [json.loads((workdir / f"published_{number}.json").read_text()) for number in range(1, len(RUNS) + 1)]
    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        current = publication_module._built_from(con)
    finally:
        con.close()
    last = manifests[-1]
    assert last["built_from"]["dim_customers"] == current["dim_customers"]
    assert last["built_from"]["fct_meter_usage"] is None  # incremental: built anew by every run, always hashed
    # between runs whose models were built from the same inputs, the table kept its fingerprints and files
    kept = [(name, number) for number in range(1, len(manifests))
            for name, model in manifests[number]["built_from"].items()
            if model and manifests[number - 1]["built_from"].get(name) == model]
    assert ("dim_customers", len(RUNS) - 1) in kept
    for name, number in kept:
        assert manifests[number]["fingerprints"][name] == manifests[number - 1]["fingerprints"][name], name
        assert manifests[number]["tables"][name] == manifests[number - 1]["tables"][name], name


def test_the_publication_keeps_on_disk_only_the_files_of_the_last_two_publications(daily):
    """The current publication's files, and the previous one's for the readers still holding it:
    nothing else, though the folder of every run stays (it holds the event log of the batch it
    loaded), and each run replaced the files of the tables that changed."""
    workdir, _ = daily
    directory = workdir / "warehouse.published"
    referenced = set()
    for number in (len(RUNS) - 1, len(RUNS)):
        manifest = json.loads((workdir / f"published_{number}.json").read_text())
        paths = [*manifest["event_partitions"].values(),
                 *(path for files in manifest["tables"].values() for path in files.values())]
        referenced |= {file for path in map(Path, paths) for file in ([path] if path.is_file() else path.rglob("*"))}
    on_disk = {path for path in directory.rglob("*") if path.is_file() and path.parent != directory}
    folders = sorted(path.name for path in directory.glob("g*"))
    assert folders == [f"g{number:06d}" for number in range(1, len(RUNS) + 1)]  # each holds its batch's events
    assert on_disk == referenced
    # what the last run replaced: the earlier runs' files of fct_invoices, for one, are gone
    assert len([path for path in on_disk if path.parent.name == "fct_invoices"]) <= 2


def test_a_day_published_by_its_stamp_reads_only_what_the_stamp_covers():
    """A day of fct_usage_daily whose stamp (its rows' count and latest metered_run, the small
    tables it joins) did not change keeps its file unhashed: the model must read nothing else."""
    manifest = manifest_json()
    for name, daily in DAILY_TABLES.items():
        node = next(node for node in manifest["nodes"].values()
                    if node["resource_type"] == "model" and node["name"] == name)
        read = {f"{manifest['nodes'][parent]['schema']}.{manifest['nodes'][parent]['name']}"
                for parent in node["depends_on"]["nodes"]}
        assert read == {daily.rows, *daily.also_reads}, name


def test_a_full_refresh_gives_identical_marts_and_byte_identical_invoices(daily):
    workdir, _ = daily
    warehouse = workdir / "warehouse.duckdb"
    before, files = snapshot(warehouse), digests(workdir / "invoices")
    proc = run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                     "--warehouse", str(warehouse), "--invoices", str(workdir / "invoices"), "--as-of", RUNS[-1],
                     "--full-refresh", home=workdir / ".dagster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(full refresh: asked for (--full-refresh))" in proc.stdout
    assert "unchanged since they were built" not in proc.stdout  # every node built
    after = snapshot(warehouse)
    for name in before:
        differing = [(old[0], [(i, a, b) for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b])
                     for old, new in zip(before[name], after[name], strict=False) if old != new]
        assert len(after[name]) == len(before[name]) and not differing, (name, differing[:2])
    assert digests(workdir / "invoices") == files


def test_a_backfill_of_one_month_re_rates_only_it_and_changes_nothing_final(daily):
    workdir, _ = daily
    files = digests(workdir / "invoices")
    command = ["run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
               "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
               "--as-of", RUNS[-1], "--month", "2026-09"]
    proc = run_tally(*command, home=workdir / ".dagster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "billing months 2026-09 to 2026-09" in proc.stdout
    assert digests(workdir / "invoices") == files
    again = run_tally(*command, home=workdir / ".dagster")
    assert again.returncode == 0 and "nothing new since run" in again.stdout
    assert digests(workdir / "invoices") == files


def test_a_checkpoint_of_other_metering_code_is_rebuilt_from_raw_events(daily):
    """After an upgrade of Tally that changed the metering models, rows kept from earlier runs
    may not be what the new code computes: the first run re-meters every event, and the next
    ones are incremental again."""
    workdir, _ = daily
    warehouse = workdir / "warehouse.duckdb"
    before, files = snapshot(warehouse), digests(workdir / "invoices")
    con = duckdb.connect(str(warehouse))
    try:  # as a checkpoint written by a version that did not record its code
        con.execute("update billing.metering_checkpoint set code_fingerprint = null")
    finally:
        con.close()
    proc = run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                     "--warehouse", str(warehouse), "--invoices", str(workdir / "invoices"), "--as-of", RUNS[-1],
                     home=workdir / ".dagster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(full refresh: the metering models changed)" in proc.stdout
    assert snapshot(warehouse) == before and digests(workdir / "invoices") == files
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        recorded = con.execute("select code_fingerprint from billing.metering_checkpoint").fetchall()
    finally:
        con.close()
    assert recorded == [(unchanged.incremental_code_fingerprint(manifest_json()),)]


def test_a_warehouse_created_in_place_of_another_is_published_whole(daily):
    """Its metering runs count from 1 again: the publication beside it must not take the files it
    published from the old warehouse for current. Here the new one has a batch fewer."""
    workdir, _ = daily
    (workdir / "warehouse.duckdb").unlink()
    (workdir / "data" / "events" / "batch_4.jsonl").unlink()
    proc = run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                     "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
                     "--as-of", RUNS[-1], home=workdir / ".dagster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(full refresh: first metering of this warehouse)" in proc.stdout
    differences = published_against_pipeline(workdir)
    assert {"event_pipeline_log", "fct_usage_daily", "fct_invoices"} <= set(differences)
    assert {name: count for name, count in differences.items() if count} == {}
