"""Drafts become final at cycle end + grace; numbers are gapless in (issue date, account, kind) order."""
from __future__ import annotations

from datetime import date

import polars as pl

from dagster_project.catalog.models import InvoiceNumbering
from dagster_project.invoicing.finalization import finalize

NO_HISTORY = pl.DataFrame(schema={"numbering_period": pl.String, "last_sequence": pl.Int32})


def headers(*rows) -> pl.DataFrame:
    return pl.DataFrame([{"invoice_id": f"{a}/{k}/{d}", "account_id": a, "kind": k, "issue_date": d}
                         for a, k, d in rows])


def numbers(frame: pl.DataFrame) -> dict[str, str | None]:
    return dict(frame.select("invoice_id", "invoice_number").iter_rows())


def test_final_on_the_issue_date_draft_before_it():
    out = finalize(headers(("a", "cycle", date(2026, 11, 4))), date(2026, 11, 3), InvoiceNumbering(), NO_HISTORY)
    assert out["status"].to_list() == ["draft"] and out["invoice_number"].to_list() == [None]
    out = finalize(headers(("a", "cycle", date(2026, 11, 4))), date(2026, 11, 4), InvoiceNumbering(), NO_HISTORY)
    assert out["status"].to_list() == ["final"] and out["invoice_number"].to_list() == ["INV-2026-000001"]


def test_numbers_follow_issue_date_then_account_then_opening_before_cycle():
    out = finalize(headers(("b", "cycle", date(2026, 11, 4)), ("a", "cycle", date(2026, 11, 4)),
                           ("a", "opening", date(2026, 11, 4)), ("c", "cycle", date(2026, 11, 2))),
                   date(2026, 11, 10), InvoiceNumbering(prefix="T", padding=3), NO_HISTORY)
    assert numbers(out) == {"c/cycle/2026-11-02": "T-2026-001", "a/opening/2026-11-04": "T-2026-002",
                            "a/cycle/2026-11-04": "T-2026-003", "b/cycle/2026-11-04": "T-2026-004"}


def test_numbers_continue_each_year_and_restart_in_a_new_one():
    history = pl.DataFrame({"numbering_period": ["2026"], "last_sequence": [41]},
                           schema={"numbering_period": pl.String, "last_sequence": pl.Int32})
    out = finalize(headers(("a", "cycle", date(2026, 12, 31)), ("a", "cycle", date(2027, 1, 3))),
                   date(2027, 1, 5), InvoiceNumbering(), history)
    assert sorted(numbers(out).values()) == ["INV-2026-000042", "INV-2027-000001"]


def test_monthly_and_never_resetting_numbers():
    monthly = finalize(headers(("a", "cycle", date(2026, 11, 4))), date(2026, 12, 1),
                       InvoiceNumbering(reset="monthly"), NO_HISTORY)
    assert monthly["invoice_number"].to_list() == ["INV-2026-11-000001"]
    never = finalize(headers(("a", "cycle", date(2026, 11, 4))), date(2026, 12, 1),
                     InvoiceNumbering(reset="never", padding=4), NO_HISTORY)
    assert never["invoice_number"].to_list() == ["INV-0001"]
