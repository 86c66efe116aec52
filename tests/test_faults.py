"""Faults: a run killed (kill -9) while it meters or while it invoices leaves the publication as it
was, and the next run ends exactly where an uninterrupted run would have; readers of the published
warehouse keep reading through a run."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import duckdb

from tests.conftest import CASES, TALLY, digests


def command(workdir, as_of):
    return [str(TALLY), "run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
            "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
            "--as-of", as_of]


def environment(workdir):
    return {**os.environ, "DAGSTER_HOME": str(workdir / ".dagster")}


def prepare(root, name):
    workdir = root / name
    shutil.copytree(CASES / "04_credits_commitment_tax" / "pricing_config", workdir / "config")
    shutil.copytree(CASES / "04_credits_commitment_tax" / "data", workdir / "data")
    return workdir


def run(workdir, as_of):
    proc = subprocess.run(command(workdir, as_of), capture_output=True, text=True, env=environment(workdir),
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def kill_after(workdir, as_of, line_start):
    """Start a run and kill it (SIGKILL) as soon as it prints a line starting with line_start."""
    proc = subprocess.Popen(command(workdir, as_of), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=environment(workdir))
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.strip().startswith(line_start):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)


def state(workdir):
    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        return {
            "invoices": con.execute("select * exclude (computed_as_of) from marts.fct_invoices "
                                    "order by invoice_id").fetchall(),
            "meters": con.execute("select * from marts.fct_meter_usage order by meter_usage_id").fetchall(),
            "credits": con.execute("select * from marts.fct_credit_ledger order by ledger_entry_id").fetchall(),
            "events": con.execute("select event_row_id, status from intermediate.int_events order by 1").fetchall(),
        }
    finally:
        con.close()


def test_a_run_killed_while_metering_or_invoicing_is_finished_by_the_next(tmp_path):
    clean = prepare(tmp_path, "clean")
    run(clean, "2026-12-10")

    crashed = prepare(tmp_path, "crashed")
    kill_after(crashed, "2026-12-10", "events")      # dbt metering is running
    kill_after(crashed, "2026-12-10", "invoicing")   # finals are numbered, not yet committed
    assert not (crashed / "warehouse.published.duckdb").exists()
    assert not list((crashed / "invoices").rglob("*.json")) if (crashed / "invoices").exists() else True
    run(crashed, "2026-12-10")

    assert state(crashed) == state(clean)  # no gap or repeat in numbers, no double draw, no duplicate meter row
    assert digests(crashed / "invoices") == digests(clean / "invoices")


def test_a_reader_of_the_publication_is_never_in_a_runs_way(tmp_path):
    workdir = prepare(tmp_path, "read")
    events = workdir / "data" / "events"
    lines = (events / "usage.jsonl").read_text().splitlines(keepends=True)
    (events / "usage.jsonl").write_text("".join(line for line in lines if '"2026-10-' in line))
    later = tmp_path / "later.jsonl"
    later.write_text("".join(line for line in lines if '"2026-10-' not in line))
    run(workdir, "2026-11-10")
    published = workdir / "warehouse.published.duckdb"
    reader = duckdb.connect(str(published), read_only=True)
    try:
        count = "select count(*) from marts.event_pipeline_log"
        before = reader.execute(count).fetchall()
        shutil.move(later, events / "later.jsonl")
        proc = subprocess.Popen(command(workdir, "2026-12-10"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=environment(workdir))
        during = []
        while proc.poll() is None:
            during.append(reader.execute(count).fetchall())  # the previous publication, whole
            time.sleep(0.2)
        output = proc.stdout.read()
        assert proc.returncode == 0, output
        assert during and all(result == before for result in during)
        assert reader.execute(count).fetchall() == before  # an open connection keeps its publication
    finally:
        reader.close()
    fresh = duckdb.connect(str(published), read_only=True)
    try:
        assert fresh.execute(count).fetchall()[0][0] > before[0][0]
        assert fresh.execute("select count(*) from marts.fct_invoices where status = 'final'").fetchall()[0][0] > 0
    finally:
        fresh.close()
