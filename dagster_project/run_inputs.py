"""What a run's result depends on, as one fingerprint, so that a run with nothing new can say so
in a second instead of starting the pipeline.

A run is fully determined by the configuration (YAML and templates), the reference CSVs, the event
files (by name, size and modification time: a file is never read twice), the run's date and
options, and the code. When all of these equal those of the last successful run, and the
published invoices and warehouse are still what that run left (every document it recorded is in
the invoices directory with its sizes; the publication file unchanged), running again would
change nothing: `tally run` reports the last result and stops.
"""
from __future__ import annotations

import hashlib
import json
from datetime import date
from importlib import metadata
from pathlib import Path

import duckdb

from dagster_project.billing_store import published_documents, published_folders
from dagster_project.invoicing.publishing import documents_in_place

CODE_DIRS = (Path(__file__).parent, Path(__file__).parents[1] / "dbt_project")


def input_fingerprint(paths: dict[str, Path], as_of: date, months: list[str] | None, full_refresh: bool) -> str:
    digest = hashlib.sha256()

    def add(*parts) -> None:
        digest.update(json.dumps(parts, default=str).encode())

    add(metadata.version("tally"), as_of, sorted(months or []), full_refresh, {k: str(v) for k, v in paths.items()})
    for folder in CODE_DIRS:
        add(max((p.stat().st_mtime_ns for p in folder.rglob("*") if p.suffix in (".py", ".sql", ".yml", ".html")),
                default=0))
    for path in sorted(paths["config"].rglob("*")):
        if path.is_file():
            add(str(path.relative_to(paths["config"])), hashlib.sha256(path.read_bytes()).hexdigest())
    for path in sorted(paths["data"].glob("*.csv")):
        add(path.name, hashlib.sha256(path.read_bytes()).hexdigest())
    events = paths["data"] / "events"
    for path in sorted(events.rglob("*")) if events.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            add(str(path.relative_to(events)), stat.st_size, stat.st_mtime_ns)
    return digest.hexdigest()


def record(con: duckdb.DuckDBPyConnection, fingerprint: str | None, invoices_dir: Path, published: Path,
           run_id: str) -> None:
    """After a successful run: what it was run on and what it left (nothing without a fingerprint)."""
    con.execute("create table if not exists billing.last_run (input_fingerprint varchar, invoices_dir varchar, "
                "publication_state varchar, run_id varchar, finished_at timestamp)")
    con.execute("alter table billing.last_run add column if not exists invoices_dir varchar")
    con.execute("delete from billing.last_run")
    if fingerprint is None:
        return
    con.execute("insert into billing.last_run (input_fingerprint, invoices_dir, publication_state, run_id, "
                "finished_at) values (?, ?, ?, ?, now())", [fingerprint, str(invoices_dir), _file_state(published),
                                                            run_id])


def recorded_fingerprint(warehouse: Path) -> str | None:
    """The inputs of the last successful run, if one recorded them."""
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        rows = con.execute("select input_fingerprint from billing.last_run").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return rows[0][0] if rows else None


def unchanged_since(warehouse: Path, fingerprint: str, invoices_dir: Path, published: Path) -> str | None:
    """The run id of the last successful run when it had these inputs and its outputs are as it left them."""
    if not warehouse.exists() or not published.exists():
        return None
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None
    try:
        rows = con.execute("select input_fingerprint, invoices_dir, publication_state, run_id "
                           "from billing.last_run").fetchall()
        if not rows or rows[0][:3] != (fingerprint, str(invoices_dir), _file_state(published)):
            return None
        recorded = published_documents(con, str(invoices_dir))
        folders = published_folders(con, str(invoices_dir))
    except duckdb.Error:
        return None
    finally:
        con.close()
    # the documents are as the run left them: every one it recorded is there, with its sizes
    if len(documents_in_place(invoices_dir, recorded, folders)[0]) != recorded.height:
        return None
    return rows[0][3]


def _file_state(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"
