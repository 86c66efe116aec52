"""What a run's result depends on, as one fingerprint, so that a run with nothing new can say so
in a second instead of starting the pipeline.

A run is fully determined by the configuration (YAML and templates), the reference CSVs, the event
files (by name, size and modification time: a file is never read twice), the run's date and
options, and the code. When all of these equal those of the last successful run, and the
published invoices and warehouse are still what that run left, running again would change
nothing: `tally run` reports the last result and stops.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from importlib import metadata
from pathlib import Path

import duckdb

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


def directory_state(directory: Path) -> str:
    """Names, sizes and modification times of every file under a directory (os.scandir: the
    invoices directory holds two files per invoice, 200k files for 100k accounts)."""
    digest = hashlib.sha256()
    for relative, stat in sorted(_files(str(directory), "")):
        digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _files(directory: str, prefix: str):
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _files(entry.path, f"{prefix}{entry.name}/")
        elif entry.is_file() and not entry.name.endswith(".pdf"):  # PDFs are the PDF job's, after the run
            yield f"{prefix}{entry.name}", entry.stat()


def record(con: duckdb.DuckDBPyConnection, fingerprint: str | None, invoices_dir: Path, published: Path,
           run_id: str) -> None:
    """After a successful run: what it was run on and what it left (nothing without a fingerprint)."""
    con.execute("create table if not exists billing.last_run (input_fingerprint varchar, invoices_state varchar, "
                "publication_state varchar, run_id varchar, finished_at timestamp)")
    con.execute("delete from billing.last_run")
    if fingerprint is None:
        return
    con.execute("insert into billing.last_run values (?, ?, ?, ?, now())",
                [fingerprint, directory_state(invoices_dir), _file_state(published), run_id])


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
        rows = con.execute("select input_fingerprint, invoices_state, publication_state, run_id "
                           "from billing.last_run").fetchall()
    except duckdb.Error:
        return None
    finally:
        con.close()
    if not rows:
        return None
    last_fingerprint, invoices_state, publication_state, run_id = rows[0]
    if (last_fingerprint, invoices_state, publication_state) == (fingerprint, directory_state(invoices_dir),
                                                                 _file_state(published)):
        return run_id
    return None


def _file_state(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"
