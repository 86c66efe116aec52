"""Corrections of final invoices, through the real `tally` on tests/fixtures/corrections: late events
re-rated into debit and credit notes (`late_events: adjust`), or only reported (`ignore`); `tally void`;
`tally export invoices` of the published warehouse.

The fixture bills two accounts on one plan (compute: SUM of job units at 1.00; storage: the LATEST
snapshot at 0.50 a GB; VAT 20 %, grace 2 days). acct_a has a 10.00 credit grant and a 20.00 wallet
top-up. October: acct_a 30 units and 100 GB, acct_b 10 units and 50 GB. Late events (loaded after
the October invoices were final): acct_a +7 units, acct_b a later snapshot of 20 GB (less to pay);
then acct_a +3 units more.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dagster_project.catalog import ConfigError, load_catalog
from dagster_project.catalog.models import BillingSettings, CustomCharge, Issuer
from dagster_project.invoicing.corrections import (
    CHARGE_SCHEMA,
    LINE_SCHEMA,
    InvoiceHistory,
    late_event_notes,
    no_history,
    void_credit_notes,
)
from dagster_project.invoicing.credits import DRAW_SCHEMA
from dagster_project.money import WORK
from tests.conftest import ROOT, digests, query, run_tally

FIXTURE = ROOT / "tests" / "fixtures" / "corrections"


def _workdir(base: Path, late_events: str | None) -> Path:
    shutil.copytree(FIXTURE / "pricing_config", base / "config")
    shutil.copytree(FIXTURE / "data", base / "data")
    (base / "data" / "events").mkdir()
    if late_events:
        with (base / "config" / "billing.yaml").open("a") as settings:
            settings.write(f"late_events: {late_events}\n")
    return base


def _flags(workdir: Path) -> list[str]:
    return ["--config", str(workdir / "config"), "--data", str(workdir / "data"),
            "--warehouse", str(workdir / "warehouse.duckdb"), "--invoices", str(workdir / "invoices")]


def _tally(workdir: Path, *args: str):
    return run_tally(*args, home=workdir / ".dagster")


def _run(workdir: Path, as_of: str, events: str | None = None, *options: str):
    if events:
        shutil.copy(FIXTURE / "events" / events, workdir / "data" / "events" / events)
    proc = _tally(workdir, "run", *_flags(workdir), "--as-of", as_of, *options)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _document(workdir: Path, name: str) -> dict:
    return json.loads((workdir / "invoices" / name).read_text())


def _lines(document: dict) -> list[tuple]:
    return [(line["billable_item"], line["quantity"], line["amount"]) for line in document["lines"]]


def _totals(document: dict) -> tuple:
    return (document["subtotal"], document["credits_applied"], [c["amount"] for c in document["custom_charges"]],
            document["total"], document["wallet_applied"], document["amount_due"])


@pytest.fixture(scope="module")
def adjusted(tmp_path_factory):
    """late_events: adjust. Four runs: October final; the first late events; more late events with
    November final; the same inputs again (a full refresh, so that everything is recomputed)."""
    workdir = _workdir(tmp_path_factory.mktemp("adjust"), "adjust")
    _run(workdir, "2026-11-10", "1_october.jsonl")
    first_finals = digests(workdir / "invoices")
    _run(workdir, "2026-12-01", "2_late.jsonl")
    _run(workdir, "2026-12-05", "3_later.jsonl")
    published = digests(workdir / "invoices")
    notes_before = query(workdir, "select count(*) from billing.invoices")
    rerun = _run(workdir, "2026-12-05", None, "--full-refresh")
    return {"dir": workdir, "first_finals": first_finals, "published": published, "rerun": rerun,
            "rows_before_rerun": notes_before}


def test_late_events_that_add_usage_give_a_debit_note_for_the_difference_with_its_tax(adjusted):
    note = _document(adjusted["dir"], "acct_a/2026-10-01_debit_note_DN-2026-000001.json")
    assert (note["kind"], note["status"], note["invoice_number"], note["adjusts_invoice_number"]) == \
        ("debit_note", "final", "DN-2026-000001", "INV-2026-000001")
    assert (note["issue_date"], note["period_start"], note["period_end"]) == ("2026-12-01", "2026-10-01", "2026-11-01")
    assert _lines(note) == [("compute", "7", "7.00")]  # storage did not change: no line
    assert note["lines"][0]["details"] == [{"kind": "adjustment", "billed_quantity": "30", "billed_amount": "30",
                                            "restated_quantity": "37", "restated_amount": "37"}]
    # settled outside credits and wallet: VAT on the difference, all of it due
    assert _totals(note) == ("7.00", "0.00", ["1.40"], "8.40", "0.00", "8.40")
    assert note["reason"] == "late events: re-rated with the events loaded after INV-2026-000001 was final"


def test_a_later_late_event_is_billed_against_the_invoice_and_the_earlier_note(adjusted):
    note = _document(adjusted["dir"], "acct_a/2026-10-01_debit_note_DN-2026-000002.json")
    assert note["adjusts_invoice_number"] == "INV-2026-000001"
    assert _lines(note) == [("compute", "3", "3.00")]
    assert note["lines"][0]["details"][0]["billed_quantity"] == "37"
    assert _totals(note) == ("3.00", "0.00", ["0.60"], "3.60", "0.00", "3.60")


def test_late_events_that_lower_an_amount_give_a_credit_note_with_positive_amounts(adjusted):
    note = _document(adjusted["dir"], "acct_b/2026-10-01_credit_note_CN-2026-000001.json")
    assert (note["kind"], note["invoice_number"], note["adjusts_invoice_number"]) == \
        ("credit_note", "CN-2026-000001", "INV-2026-000002")
    # the LATEST snapshot went from 50 GB (25.00) to 20 GB (10.00): 30 GB and 15.00 credited, with their VAT
    assert _lines(note) == [("storage", "30", "15.00")]
    assert _totals(note) == ("15.00", "0.00", ["3.00"], "18.00", "0.00", "18.00")


def test_notes_are_numbered_gaplessly_in_their_own_series_and_invoices_keep_theirs(adjusted):
    numbers = query(adjusted["dir"], "select kind, invoice_number from marts.fct_invoices where status = 'final' "
                                      "order by invoice_number")
    assert numbers == [("credit_note", "CN-2026-000001"), ("debit_note", "DN-2026-000001"),
                       ("debit_note", "DN-2026-000002"), ("cycle", "INV-2026-000001"), ("cycle", "INV-2026-000002"),
                       ("cycle", "INV-2026-000003"), ("cycle", "INV-2026-000004")]


def test_the_original_invoices_never_change(adjusted):
    for name, digest in adjusted["first_finals"].items():
        assert adjusted["published"][name] == digest, name
    original = _document(adjusted["dir"], "acct_a/2026-10-01_cycle.json")
    assert _totals(original) == ("80.00", "10.00", ["14.00"], "84.00", "20.00", "64.00")


def test_late_events_point_to_the_note_that_billed_them(adjusted):
    log = query(adjusted["dir"], "select event_id, status, invoice_number, adjusted_by_invoice_number "
                                  "from marts.event_pipeline_log where account_id = 'acct_a' order by event_id")
    assert log == [("a1", "metered", "INV-2026-000001", None), ("a2", "metered", "INV-2026-000001", None),
                   ("a3", "metered", "INV-2026-000001", None), ("a4", "late", None, "DN-2026-000001"),
                   ("a5", "metered", "INV-2026-000003", None), ("a6", "late", None, "DN-2026-000002")]
    assert query(adjusted["dir"], "select adjusted_by_invoice_number from marts.event_pipeline_log "
                                   "where event_id = 'b3'") == [("CN-2026-000001",)]


def test_revenue_marts_are_net_of_notes(adjusted):
    monthly = query(adjusted["dir"], "select strftime(revenue_month, '%Y-%m'), invoice_count, credit_note_count, "
                                      "debit_note_count, subtotal_amount, total_amount from marts.fct_revenue_monthly "
                                      "order by 1")
    # December: the November invoices (4.00 + 0), DN 7.00 + 3.00, CN -15.00
    assert [tuple(str(v) for v in row) for row in monthly] == [
        ("2026-11", "2", "0", "0", "115.0000", "126.0000"), ("2026-12", "2", "1", "2", "-1.0000", "-1.2000")]
    by_item = query(adjusted["dir"], "select customer_id, billable_item, quantity, amount "
                                      "from marts.fct_revenue_by_customer_item "
                                      "where revenue_month = date '2026-12-01' and amount <> 0 order by 1, 2")
    assert [tuple(str(v) for v in row) for row in by_item] == [
        ("cus_1", "compute", "14.000000000000000000", "14.0000"),
        ("cus_2", "storage", "-30.000000000000000000", "-15.0000")]
    published = duckdb.connect(str(adjusted["dir"] / "warehouse.published.duckdb"), read_only=True)
    try:
        assert published.execute("select count(*) from marts.fct_revenue_by_customer_item").fetchone()[0] > 0
    finally:
        published.close()


def test_a_rerun_with_the_same_inputs_issues_nothing_and_rewrites_no_byte(adjusted):
    assert "0 newly final" in adjusted["rerun"].stdout and "note(s) issued" not in adjusted["rerun"].stdout
    assert query(adjusted["dir"], "select count(*) from billing.invoices") == adjusted["rows_before_rerun"]
    assert digests(adjusted["dir"] / "invoices") == adjusted["published"]


def _export(workdir: Path, *args: str):
    proc = _tally(workdir, "export", "invoices", "--warehouse", str(workdir / "warehouse.duckdb"), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_export_csv_has_a_row_per_line_of_the_months_invoices_and_notes(adjusted):
    rows = list(csv.DictReader(io.StringIO(_export(adjusted["dir"], "--month", "2026-12", "--format", "csv").stdout)))
    assert [(r["invoice_number"], r["kind"], r["adjusts_invoice_number"], r["revenue_sign"], r["total"],
             r["billable_item"], r["quantity"], r["line_amount"]) for r in rows] == [
        ("CN-2026-000001", "credit_note", "INV-2026-000002", "-1", "18.00", "storage", "30", "15.00"),
        ("DN-2026-000001", "debit_note", "INV-2026-000001", "1", "8.40", "compute", "7", "7.00"),
        ("INV-2026-000003", "cycle", "", "1", "4.80", "compute", "4", "4.00"),
        ("INV-2026-000003", "cycle", "", "1", "4.80", "storage", "0", "0.00"),
        ("INV-2026-000004", "cycle", "", "1", "0.00", "compute", "0", "0.00"),
        ("INV-2026-000004", "cycle", "", "1", "0.00", "storage", "0", "0.00"),
        ("DN-2026-000002", "debit_note", "INV-2026-000001", "1", "3.60", "compute", "3", "3.00")]
    assert rows[0]["invoice_id"] == "acct_b/2026-10-01_credit_note_CN-2026-000001"
    assert (rows[0]["custom_charges"], rows[0]["customer_name"], rows[0]["issue_date"]) == \
        ("3.00", "Initech LLC", "2026-12-01")


def test_export_json_to_a_file_holds_each_document_with_its_lines(adjusted, tmp_path):
    output = tmp_path / "november.json"
    _export(adjusted["dir"], "--month", "2026-11", "--format", "json", "--output", str(output))
    exported = json.loads(output.read_text())
    assert exported["month"] == "2026-11"
    assert [(d["invoice_number"], d["total"], d["credits_applied"], d["wallet_applied"], d["amount_due"],
             [(line["billable_item"], line["line_amount"]) for line in d["lines"]])
            for d in exported["documents"]] == [
        ("INV-2026-000001", "84.00", "10.00", "20.00", "64.00", [("compute", "30.00"), ("storage", "50.00")]),
        ("INV-2026-000002", "42.00", "0.00", "0.00", "42.00", [("compute", "10.00"), ("storage", "25.00")])]
    assert _export(adjusted["dir"], "--month", "2027-01", "--format", "json").stdout.count("invoice_id") == 0


@pytest.fixture(scope="module")
def voided(tmp_path_factory):
    """late_events left at its default (ignore): October final, late events reported; then
    `tally void` of acct_a's October invoice on the day of the second run."""
    workdir = _workdir(tmp_path_factory.mktemp("void"), None)
    _run(workdir, "2026-11-10", "1_october.jsonl")
    first_finals = digests(workdir / "invoices")
    _run(workdir, "2026-12-01", "2_late.jsonl")
    ignored = {"files": digests(workdir / "invoices"),
               "kinds": query(workdir, "select kind, status, count(*) from marts.fct_invoices "
                                        "group by all order by all"),
               "log": query(workdir, "select event_id, status, reason, adjusted_by_invoice_id "
                                      "from marts.event_pipeline_log where status = 'late' order by event_id")}
    void = _tally(workdir, "void", "INV-2026-000001", "--reason", "wrong storage reading", *_flags(workdir),
                  "--as-of", "2026-12-01")
    return {"dir": workdir, "first_finals": first_finals, "ignored": ignored, "void": void}


def test_with_ignore_late_events_are_only_reported(voided):
    ignored = voided["ignored"]
    assert ignored["kinds"] == [("cycle", "draft", 2), ("cycle", "final", 2)]
    assert ignored["log"] == [
        ("a4", "late", "loaded after the invoice of cycle acct_a/2026-10-01 was final", None),
        ("b3", "late", "loaded after the invoice of cycle acct_b/2026-10-01 was final", None)]
    assert sorted(name for name in ignored["files"] if name.endswith(".json")) == [
        "acct_a/2026-10-01_cycle.json", "acct_a/2026-11-01_cycle.json", "acct_b/2026-10-01_cycle.json",
        "acct_b/2026-11-01_cycle.json"]
    for name, digest in voided["first_finals"].items():
        assert ignored["files"][name] == digest


def test_void_issues_a_full_credit_note_and_a_fresh_invoice_on_current_data(voided):
    proc = voided["void"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "INV-2026-000001 voided by credit note CN-2026-000001; invoice INV-2026-000003 issued in its place" \
        in proc.stdout
    workdir = voided["dir"]
    note = _document(workdir, "acct_a/2026-10-01_credit_note_CN-2026-000001.json")
    assert (note["kind"], note["adjusts_invoice_number"], note["reason"], note["issue_date"]) == \
        ("credit_note", "INV-2026-000001", "wrong storage reading", "2026-12-01")
    assert _lines(note) == [("compute", "30", "30.00"), ("storage", "100", "50.00")]
    assert _totals(note) == ("80.00", "10.00", ["14.00"], "84.00", "20.00", "64.00")
    assert note["credits"] == [{"grant_id": "g_a", "amount": "10.00"}]
    fresh = _document(workdir, "acct_a/2026-10-01_cycle_replaces_INV-2026-000001.json")
    assert (fresh["kind"], fresh["invoice_number"], fresh["replaces_invoice_number"], fresh["issue_date"]) == \
        ("cycle", "INV-2026-000003", "INV-2026-000001", "2026-12-01")
    # rated on current data: the late 7 units count; the credit and the wallet pay again
    assert _lines(fresh) == [("compute", "37", "37.00"), ("storage", "100", "50.00")]
    assert _totals(fresh) == ("87.00", "10.00", ["15.40"], "92.40", "20.00", "72.40")
    for name, digest in voided["first_finals"].items():
        assert digests(workdir / "invoices")[name] == digest
    assert query(workdir, "select voided_by_invoice_number from marts.fct_invoices "
                           "where invoice_number = 'INV-2026-000001'") == [("CN-2026-000001",)]


def test_void_restores_the_credits_and_wallet_money_the_voided_invoice_drew(voided):
    credits = query(voided["dir"], "select entry_type, invoice_id, amount, balance_amount "
                                    "from marts.fct_credit_ledger where grant_id = 'g_a' "
                                    "order by effective_date, entry_date, entry_type desc")
    assert credits == [
        ("grant", None, Decimal(10), Decimal(10)),
        ("draw", "acct_a/2026-10-01_cycle", Decimal(-10), Decimal(0)),
        ("restore", "acct_a/2026-10-01_credit_note_CN-2026-000001", Decimal(10), Decimal(10)),
        ("draw", "acct_a/2026-10-01_cycle_replaces_INV-2026-000001", Decimal(-10), Decimal(0))]
    wallet = query(voided["dir"], "select entry_type, source_id, amount, balance_amount from marts.fct_wallet_ledger "
                                   "where account_id = 'acct_a' order by entry_date, amount desc")
    assert wallet == [
        ("topup", "t_a", Decimal(20), Decimal(20)), ("draw", "acct_a/2026-10-01_cycle", Decimal(-20), Decimal(0)),
        ("restore", "acct_a/2026-10-01_credit_note_CN-2026-000001", Decimal(20), Decimal(20)),
        ("draw", "acct_a/2026-10-01_cycle_replaces_INV-2026-000001", Decimal(-20), Decimal(0))]


def test_after_a_void_events_point_to_the_fresh_invoice(voided):
    log = query(voided["dir"], "select event_id, status, invoice_number, adjusted_by_invoice_number "
                                "from marts.event_pipeline_log where account_id = 'acct_a' and event_id <> 'a5' "
                                "order by event_id")
    assert log == [("a1", "metered", "INV-2026-000003", None), ("a2", "metered", "INV-2026-000003", None),
                   ("a3", "metered", "INV-2026-000003", None), ("a4", "late", None, "INV-2026-000003")]


@pytest.mark.parametrize("reference, message", [
    ("INV-2026-000001", "INV-2026-000001 is already void (credit note CN-2026-000001)"),
    ("INV-2099-000007", "no invoice INV-2099-000007: nothing to void"),
    ("acct_a/2026-11-01_cycle", "acct_a/2026-11-01_cycle is a draft: only a final invoice can be voided"),
    ("CN-2026-000001", "CN-2026-000001 is a credit note: only an invoice can be voided"),
])
def test_void_refuses_what_cannot_be_voided_and_changes_nothing(voided, reference, message):
    workdir = voided["dir"]
    before = (digests(workdir / "invoices"), digests(workdir / "data"),
              query(workdir, "select count(*) from billing.invoices"),
              query(workdir, "select count(*) from billing.void_requests"))
    proc = _tally(workdir, "void", reference, "--reason", "again", *_flags(workdir), "--as-of", "2026-12-02")
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"tally: {message}") and len(proc.stderr.strip().splitlines()) == 1
    assert (digests(workdir / "invoices"), digests(workdir / "data"),
            query(workdir, "select count(*) from billing.invoices"),
            query(workdir, "select count(*) from billing.void_requests")) == before


# --- the arithmetic of notes, on frames --------------------------------------------------------------

SETTINGS = BillingSettings(issuer=Issuer(name="Acme"),
                           custom_charges=[CustomCharge(name="VAT", type="percentage", rate=Decimal("0.2"))])
CYCLE = {"account_id": "a", "customer_id": "c", "price_plan": "p", "cycle_id": "a/2026-10-01", "cycle_index": 0,
         "period_start_date": date(2026, 10, 1), "period_end_date": date(2026, 11, 1), "currency": "USD"}


def _history_lines(*rows) -> pl.DataFrame:
    return pl.DataFrame([{"invoice_id": i, "line_number": n, "line_type": t, "billable_item": item,
                          "description": text, "quantity": None if q is None else Decimal(q), "amount": Decimal(a),
                          "details_json": "[]"} for i, n, t, item, text, q, a in rows], schema=LINE_SCHEMA)


def _documents(*rows) -> pl.DataFrame:
    return pl.DataFrame([{**CYCLE, "invoice_id": i, "chain_id": "a/2026-10-01_cycle", "kind": kind,
                          "invoice_number": number, "adjusts_invoice_id": adjusts, "adjustment_cause": cause,
                          "issue_date": date(2026, 11, 3), **totals}
                         for i, kind, number, adjusts, cause, totals in rows])


def test_a_note_nets_every_item_against_what_was_billed_and_takes_its_kind_from_the_total():
    restated = pl.DataFrame([{**CYCLE, "invoice_id": "a/2026-10-01_cycle#restated", "kind": "cycle",
                              "restates_invoice_id": "a/2026-10-01_cycle", "currency_digits": 2, "tax_rate": None}],
                            schema_overrides={"tax_rate": WORK})
    restated_lines = _history_lines(("a/2026-10-01_cycle#restated", 1, "usage", "compute", "Compute", "10", "10"),
                                    ("a/2026-10-01_cycle#restated", 2, "usage", "storage", "Storage", "5", "2.5"))
    history = InvoiceHistory(
        voids=no_history().voids,
        documents=_documents(("a/2026-10-01_cycle", "cycle", "INV-1", None, None, {})),
        lines=_history_lines(("a/2026-10-01_cycle", 1, "usage", "compute", "Compute", "12", "12"),
                             ("a/2026-10-01_cycle", 2, "usage", "storage", "Storage", "5", "2.5"),
                             ("a/2026-10-01_cycle", 3, "pricing_rule", None, "Loyalty", None, "-1")),
        charges=no_history().charges, credit_draws=no_history().credit_draws)
    notes = late_event_notes(SETTINGS, restated, restated_lines.drop("details_json"), history, date(2026, 12, 1))
    # compute -2 and the loyalty discount gone (+1): 1.00 less to pay, shown in the credit note's direction
    assert notes.headers.select("kind", "adjusts_invoice_number", "subtotal_amount", "custom_charges_amount",
                                "total_amount").rows() == [("credit_note", "INV-1", Decimal(1), Decimal("0.2"),
                                                            Decimal("1.2"))]
    assert notes.lines.select("line_number", "billable_item", "description", "quantity", "amount").rows() == [
        (1, "compute", "Compute", Decimal(2), Decimal(2)), (2, None, "Loyalty", None, Decimal(-1))]


def test_a_void_credits_the_invoice_with_the_late_event_notes_that_adjusted_it_and_returns_its_draws():
    money = {"subtotal_amount": Decimal(30), "credits_applied_amount": Decimal(10), "custom_charges_amount": Decimal(4),
             "total_amount": Decimal(24), "wallet_applied_amount": Decimal(5), "amount_due_amount": Decimal(19)}
    note = {"subtotal_amount": Decimal(7), "credits_applied_amount": Decimal(0),
            "custom_charges_amount": Decimal("1.4"), "total_amount": Decimal("8.4"),
            "wallet_applied_amount": Decimal(0), "amount_due_amount": Decimal("8.4")}
    history = InvoiceHistory(
        voids=pl.DataFrame({"invoice_id": ["a/2026-10-01_cycle"], "invoice_number": ["INV-1"], "reason": ["typo"]}),
        documents=_documents(("a/2026-10-01_cycle", "cycle", "INV-1", None, None, money),
                             ("a/2026-10-01_debit_note_DN-1", "debit_note", "DN-1", "a/2026-10-01_cycle",
                              "late_events", note)),
        lines=_history_lines(("a/2026-10-01_cycle", 1, "usage", "compute", "Compute", "30", "30"),
                             ("a/2026-10-01_debit_note_DN-1", 1, "usage", "compute", "Compute", "7", "7")),
        charges=pl.DataFrame([{"invoice_id": "a/2026-10-01_cycle", "charge_number": 1, "charge_name": "VAT",
                               "rate": Decimal("0.2"), "amount": Decimal(4)},
                              {"invoice_id": "a/2026-10-01_debit_note_DN-1", "charge_number": 1, "charge_name": "VAT",
                               "rate": Decimal("0.2"), "amount": Decimal("1.4")}], schema=CHARGE_SCHEMA),
        credit_draws=pl.DataFrame([{"invoice_id": "a/2026-10-01_cycle", "account_id": "a", "grant_id": "g",
                                    "draw_number": 1, "amount": Decimal(10)}], schema=DRAW_SCHEMA))
    notes = void_credit_notes(history, date(2026, 12, 1))
    assert notes.headers.select("kind", "adjusts_invoice_number", "adjustment_reason", *money).rows() == [
        ("credit_note", "INV-1", "typo", Decimal(37), Decimal(10), Decimal("5.4"), Decimal("32.4"), Decimal(5),
         Decimal("27.4"))]
    assert notes.lines.select("billable_item", "quantity", "amount").rows() == [("compute", Decimal(37), Decimal(37))]
    assert notes.credit_draws.select("grant_id", "amount").rows() == [("g", Decimal(-10))]
    assert notes.wallet_draws.select("draw_date", "amount").rows() == [(date(2026, 12, 1), Decimal(-5))]


def test_each_numbering_series_needs_its_own_prefix_fit_for_a_file_name(tmp_path):
    config = shutil.copytree(FIXTURE / "pricing_config", tmp_path / "config")
    with (config / "billing.yaml").open("a") as settings:
        settings.write('credit_note_numbering: {prefix: INV}\ndebit_note_numbering: {prefix: "D/N"}\n')
    with pytest.raises(ConfigError) as refused:
        load_catalog(config)
    assert [str(problem) for problem in refused.value.problems] == [
        "billing.yaml: credit_note_numbering.prefix: 'INV' is already the prefix of invoice_numbering; "
        "each series needs its own",
        "billing.yaml: debit_note_numbering.prefix: 'D/N' cannot hold / or \\ (numbers name files)"]
