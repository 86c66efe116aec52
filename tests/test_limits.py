"""Numbers with limits: what is out of range or scale is named, never rounded away or overflowed."""
from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import polars as pl
import pytest

from dagster_project import run_lock
from dagster_project.catalog import load_catalog
from dagster_project.invoicing.publishing import UnsafePath, check_paths, document_path
from dagster_project.limits import decimal_problem
from dagster_project.rating.magnitude import magnitude, out_of_range
from tests.conftest import CASES


@pytest.mark.parametrize(("text", "problem"), [
    ("19.99", None), ("-0.5", None), ("1E+3", None), ("123456789012345678.123456789", None), ("0.000", None),
    ("0.0000000000000000001", "'0.0000000000000000001' has 19 decimal places; the supported scale is 9"),
    ("12345678901234567890", "'12345678901234567890' has 20 digits before the decimal point; the supported range "
                             "is 18"),
    ("1e40", "'1e40' has 41 digits before the decimal point; the supported range is 18"),
    ("ten", "'ten' is not a decimal number"),
])
def test_decimal_limits_name_the_limit(text, problem):
    assert decimal_problem(text) == problem


def test_magnitude_counts_integer_digits_exactly():
    assert [magnitude(Decimal(v)) for v in ("0", "0.99", "9.99", "10", "999999999999999999")] == [0, 0, 1, 2, 18]


def test_lines_that_could_leave_the_working_range_hold_their_account():
    catalog = load_catalog(CASES / "02_tiers_packages_volume" / "pricing_config")
    due = pl.DataFrame({"invoice_id": ["a/x", "b/x"], "account_id": ["a", "b"], "cycle_id": ["a/c", "b/c"],
                        "price_plan": ["growth", "growth"]})
    usage = pl.DataFrame({"cycle_id": ["a/c", "b/c"], "meter_name": ["api_calls", "api_calls"],
                          "quantity": [Decimal("12500"), Decimal("100000000000000000000")],
                          "event_count": [3, 4]}, schema_overrides={"quantity": pl.Decimal(38, 9)})
    licenses = pl.DataFrame(schema={"cycle_id": pl.String, "billable_item": pl.String, "quantity": pl.Decimal(38, 18)})
    held = out_of_range(catalog, due, usage, licenses)
    assert held.rows() == [("b", "meter api_calls measured 100000000000000000000.000000000 in cycle b/c: amounts of "
                                 "10^18 or more cannot be rated exactly")]


@pytest.mark.parametrize("invoice_id", ["../2026-10-01_cycle", "a/../../x", "a/b/c", "/etc/passwd", "a\x00/x"])
def test_nothing_is_ever_written_outside_the_invoices_directory(tmp_path, invoice_id):
    with pytest.raises(UnsafePath):
        check_paths(tmp_path / "invoices", [invoice_id])


def test_an_ordinary_invoice_path(tmp_path):
    path = document_path(tmp_path / "invoices", "acct_a/2026-10-01_cycle", ".json")
    assert path == (tmp_path / "invoices" / "acct_a" / "2026-10-01_cycle.json").resolve()


def test_a_second_process_cannot_take_the_warehouse_and_hears_who_holds_it(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    run_lock.acquire(warehouse, "tally run --as-of 2026-11-10")
    try:
        probe = subprocess.run([sys.executable, "-c", (
            "import sys; from pathlib import Path; from dagster_project import run_lock\n"
            f"try:\n    run_lock.acquire(Path({str(warehouse)!r}), 'second')\n"
            "except run_lock.WarehouseBusy as exc:\n    print(exc); sys.exit(4)")], capture_output=True, text=True)
        assert probe.returncode == 4
        assert "another run holds the warehouse" in probe.stdout and "tally run --as-of 2026-11-10" in probe.stdout
    finally:
        run_lock.release(warehouse)
    free = subprocess.run([sys.executable, "-c", "from pathlib import Path; from dagster_project import run_lock; "
                                                 f"run_lock.acquire(Path({str(warehouse)!r}), 'third')"])
    assert free.returncode == 0
