"""Shared fixtures: paths to the project, its behaviour cases (tests/cases) and the real `tally`."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "cases"
TALLY = Path(sys.executable).with_name("tally")


# runs of the tests are recorded in Dagster instances of their own, never in the project's .dagster/
_SCRATCH_HOME = Path(tempfile.mkdtemp(prefix="tally-tests-dagster-"))


def run_tally(*args: str, cwd: Path | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    """The real `tally` command; its Dagster instance is `home`, else cwd/.dagster, else a scratch one."""
    env = {**os.environ, "DAGSTER_HOME": str(home or (cwd / ".dagster" if cwd else _SCRATCH_HOME))}
    return subprocess.run([str(TALLY), *args], capture_output=True, text=True, cwd=cwd, timeout=900, env=env)


@pytest.fixture
def case_copy(tmp_path):
    """Copy a case's config and data (events included) into tmp_path/config, tmp_path/data."""

    def copy(name: str) -> Path:
        shutil.copytree(CASES / name / "pricing_config", tmp_path / "config")
        shutil.copytree(CASES / name / "data", tmp_path / "data")
        (tmp_path / "data" / "events").mkdir(exist_ok=True)
        return tmp_path

    return copy


def tally_run(workdir: Path, as_of: str) -> subprocess.CompletedProcess:
    return run_tally("run", "--config", str(workdir / "config"), "--data", str(workdir / "data"),
                     "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices"),
                     "--as-of", as_of, home=workdir / ".dagster")


def tally_pdfs(workdir: Path) -> subprocess.CompletedProcess:
    """`tally pdfs` on what tally_run(workdir, ...) published."""
    return run_tally("pdfs", "--config", str(workdir / "config"), "--warehouse", str(workdir / "warehouse.duckdb"),
                     "--invoices", str(workdir / "invoices"), home=workdir / ".dagster")


def recorded_runs(home: Path) -> list:
    """The runs recorded in a Dagster instance (its settings read DAGSTER_HOME)."""
    import dagster as dg

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.get() as instance:
            return list(instance.get_runs()), list(instance.get_dynamic_partitions("billing_months"))
    finally:
        if previous is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = previous


def digests(directory: Path) -> dict[str, str]:
    """Every file under a directory (relative path -> sha256): what "byte-identical" compares."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def query_file(warehouse: Path, sql: str) -> list[tuple]:
    """Rows of a query on a DuckDB file, opened read-only and closed again (runs need the file)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def query(workdir: Path, sql: str) -> list[tuple]:
    """Rows of a query on the warehouse of a case workdir (see tally_run)."""
    return query_file(workdir / "warehouse.duckdb", sql)
