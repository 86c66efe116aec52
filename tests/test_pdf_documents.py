"""Invoice PDFs: rendered by the job tally_pdfs, which a real `tally demo` runs after billing, read back with pypdf and
checked against their JSON; currencies of 3 and 0 minor-unit digits; the DRAFT mark; a final
rendered once, a draft again when it changed, its PDF gone with it."""
from __future__ import annotations

import io
import json
import os
import shutil
from datetime import date
from decimal import Decimal

import duckdb
import pytest
from babel.numbers import format_currency
from pypdf import PdfReader

from dagster_project import billing_store as store
from dagster_project.catalog.models import Issuer
from dagster_project.invoicing.documents import invoice_document
from dagster_project.invoicing.pdf import PdfRenderer, publish_pdfs, rendering_fingerprint
from tests.conftest import ROOT, run_tally


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    shutil.copytree(ROOT / "pricing_config", workdir / "pricing_config")
    proc = run_tally("demo", cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return workdir, proc.stdout


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def usd(amount: str) -> str:
    """The independent oracle: Babel's own format_currency."""
    return format_currency(Decimal(amount), "USD", locale="en_US")


def test_every_document_has_a_pdf_showing_its_number_dates_lines_and_totals(demo):
    workdir, output = demo
    documents = sorted((workdir / "invoices").glob("*/*.json"))
    assert len(documents) == 21
    assert "21 PDFs in" in output and "(21 rendered, 0 unchanged, 0 removed)" in output
    for path in documents:
        document = json.loads(path.read_text())
        text = text_of(path.with_suffix(".pdf").read_bytes())
        assert f"Invoice {document['invoice_number']}" in text
        assert "DRAFT" not in text and "-$0.00" not in text and "-0.00" not in text
        issued, due = date.fromisoformat(document["issue_date"]), date.fromisoformat(document["due_date"])
        assert f"{due:%b} {due.day}, {due.year}" in text and f"{issued:%b} {issued.day}, {issued.year}" in text
        for line in document["lines"]:
            assert usd(line["amount"]) in text, (path, line["billable_item"])
        for total in ("subtotal", "total"):
            assert usd(document[total]) in text
        assert f"Amount due (USD) {usd(document['amount_due'])}" in text
        assert "team_business" not in text and "payments_standard" not in text  # plan ids are no names


def test_one_invoice_in_full(demo):
    workdir, _ = demo
    text = text_of((workdir / "invoices" / "acct_stark_team" / "2026-10-16_cycle.pdf").read_bytes())
    for shown in ("Invoice ACME-2026-000020", "Acme Cloud Inc.", "Tax ID US-123456789", "Stark Industries",
                  "10880 Malibu Point, Malibu", "Issue date", "Nov 4, 2026", "Dec 4, 2026", "Net 30 days",
                  "Oct 16, 2026 – Oct 31, 2026", "Seats 24 $10.00 $111.48", "Seat volume discount -$12.39",
                  "Platform fee 1 $199.00 $199.00", "Sales tax 8.25% of $500.00", "$41.25",
                  "Amount due (USD) $541.25"):
        assert shown in text, shown


def test_a_customers_payment_terms_replace_the_configured_ones(demo):
    workdir, _ = demo
    umbrella = json.loads((workdir / "invoices" / "acct_umbrella_api" / "2026-09-15_cycle.json").read_text())
    globex = json.loads((workdir / "invoices" / "acct_globex_shop" / "2026-10-01_cycle.json").read_text())
    assert (umbrella["issue_date"], umbrella["payment_terms_days"], umbrella["due_date"]) == (
        "2026-10-17", 14, "2026-10-31")
    assert (globex["issue_date"], globex["payment_terms_days"], globex["due_date"]) == ("2026-11-04", 30, "2026-12-04")
    assert umbrella["customer"]["tax_id"] == "DE811907980"
    text = text_of((workdir / "invoices" / "acct_umbrella_api" / "2026-09-15_cycle.pdf").read_bytes())
    assert "Oct 31, 2026" in text and "Net 14 days" in text and "Tax ID DE811907980" in text
    assert "Sales tax 19% of $530.56" in text


def test_three_and_zero_digit_currencies():
    header = {"invoice_number": "INV-2026-000001", "status": "final", "kind": "cycle", "account_id": "acct_kw",
              "customer_id": "cus_kw", "price_plan": "gulf", "period_start_date": date(2026, 10, 1),
              "period_end_date": date(2026, 11, 1), "issue_date": date(2026, 11, 4)}
    line = {"line_type": "usage", "billable_item": "calls", "description": "API requests",
            "quantity": Decimal("1234567"), "details": [{"kind": "per_unit", "quantity": "1234567",
                                                         "unit_price": "0.0010005", "amount": "1235.1843"}]}
    renderer = PdfRenderer("en_US")
    for currency, digits, amount, total, zero, price in (
            ("KWD", 3, "1235.184", "KWD1,235.184", "KWD0.000", "KWD0.001001"),
            ("JPY", 0, "1235", "¥1,235", "¥0", "¥0.001001")):
        money = {name: Decimal(amount) for name in ("subtotal_amount", "total_amount", "amount_due_amount")}
        document = invoice_document(
            header | money | {"currency": currency, "currency_digits": digits, "credits_applied_amount": Decimal(0),
                              "wallet_applied_amount": Decimal("-0")},
            [line | {"amount": Decimal(amount)}], [], Issuer(name="Gulf Cloud"), {"customer_id": "cus_kw"},
            payment_terms_days=30, units={"calls": "requests"})
        assert (document["amount_due"], document["wallet_applied"]) == (amount, {"KWD": "0.000", "JPY": "0"}[currency])
        text = text_of(renderer.render(document))
        assert f"API requests 1,234,567 requests {price} {total}" in text
        # subtotal, credits applied, total, paid from wallet: a zero deduction is never -0
        assert f"{total}\n{zero}\n{total}\n{zero}\nAmount due ({currency}) {total}" in text
        assert "-" + zero not in text


def test_a_draft_carries_a_draft_mark(demo):
    workdir, _ = demo
    final = json.loads((workdir / "invoices" / "acct_globex_shop" / "2026-10-01_cycle.json").read_text())
    draft = final | {"status": "draft", "invoice_number": None}
    text = text_of(PdfRenderer("en_US").render(draft))
    assert "Draft invoice" in text and "DRAFT" in text and "Dec 4, 2026" in text  # the due date it would get
    assert "ACME-" not in text


def copy_of_demo(demo, tmp_path):
    """The demo's invoices and warehouse copied into tmp_path, its PDFs recorded as the copy's: the
    directory and a connection to the warehouse."""
    workdir, _ = demo
    shutil.copytree(workdir / "invoices", tmp_path / "invoices")
    shutil.copyfile(workdir / "warehouse" / "tally.duckdb", tmp_path / "tally.duckdb")
    directory = tmp_path / "invoices"
    con = duckdb.connect(str(tmp_path / "tally.duckdb"))
    con.execute("update billing.rendered_pdfs set directory = ?", [str(directory)])
    return directory, con


def test_a_final_is_rendered_once_a_draft_when_it_changes_and_its_pdf_goes_with_it(demo, tmp_path):
    directory, con = copy_of_demo(demo, tmp_path)
    draft_id, other_id = "acct_globex_shop/2026-10-01_cycle", "acct_initech_api/2026-10-01_cycle"
    as_draft = "document_json = replace(document_json, '\"status\": \"final\"', '\"status\": \"draft\"')"
    pdf = directory / f"{draft_id}.pdf"

    def run(locale="en_US"):
        stamps = store.pdf_stamps(con, str(directory), rendering_fingerprint(locale))
        report = publish_pdfs(directory, stamps, lambda ids: store.document_jsons(con, ids), store.invoice_ids(con),
                              store.rendered_pdf_ids(con, str(directory)), locale)
        store.record_rendered_pdfs(con, str(directory), report.rendered, report.removed_ids)
        return sorted(report.rendered["invoice_id"]), report.unchanged, report.removed_ids

    try:
        assert run() == ([], 21, [])  # every final was rendered once, by the demo's run
        (directory / "acct_hooli_pay" / "2026-10-01_cycle.pdf").write_bytes(b"%PDF-1.7 damaged")
        assert run() == (["acct_hooli_pay/2026-10-01_cycle"], 20, [])
        con.execute(f"update billing.invoices set status = 'draft', {as_draft} where invoice_id = ?", [draft_id])
        assert run() == ([draft_id], 20, [])
        assert "DRAFT" in text_of(pdf.read_bytes())
        assert run() == ([], 21, [])
        assert run("de_DE") == ([draft_id], 20, [])  # another locale: the draft only
        assert "782,78" in text_of(pdf.read_bytes())
        con.execute("update billing.invoices set document_json = replace(document_json, '\"782.78\"', '\"790.00\"') "
                    "where invoice_id = ?", [draft_id])
        assert run() == ([draft_id], 20, [])
        assert "$790.00" in text_of(pdf.read_bytes())
        con.execute("delete from billing.invoices where invoice_id = ?", [draft_id])
        assert run() == ([], 20, [draft_id])
        assert not pdf.exists() and (directory / f"{draft_id}.json").exists()  # JSON and HTML: publishing's
        # a draft that becomes final is rendered as final, then never again
        con.execute(f"update billing.invoices set status = 'draft', {as_draft} where invoice_id = ?", [other_id])
        assert run() == ([other_id], 19, [])
        con.execute("update billing.invoices set status = 'final', document_json = replace(document_json, "
                    "'\"status\": \"draft\"', '\"status\": \"final\"') where invoice_id = ?", [other_id])
        assert run() == ([other_id], 19, [])
        assert "DRAFT" not in text_of((directory / f"{other_id}.pdf").read_bytes())
        assert run() == ([], 20, [])
    finally:
        con.close()


def test_a_folder_unchanged_since_a_pass_over_every_pdf_is_not_checked_file_by_file(demo, tmp_path):
    directory, con = copy_of_demo(demo, tmp_path)
    folders = sorted(path.name for path in directory.iterdir() if path.is_dir())
    damaged, removed = directory / "acct_initech_api" / "2026-10-01_cycle.pdf", "acct_hooli_pay/2026-10-01_cycle"

    def run(every=True, settled_ns=0):
        stamps = store.pdf_stamps(con, str(directory), rendering_fingerprint("en_US"))
        report = publish_pdfs(directory, stamps, lambda ids: store.document_jsons(con, ids), store.invoice_ids(con),
                              store.rendered_pdf_ids(con, str(directory)), "en_US",
                              recorded_folders=store.published_folders(con, str(directory), "pdfs"),
                              covers_every_document=every, settled_ns=settled_ns)
        store.record_rendered_pdfs(con, str(directory), report.rendered, report.removed_ids)
        store.record_published_folders(con, str(directory), report.folders, "pdfs")
        return sorted(report.rendered["invoice_id"]), report.folders

    def mtime(account):
        return (directory / account).stat().st_mtime_ns

    try:
        rendered, recorded = run()
        assert rendered == [] and recorded == {account: mtime(account) for account in folders}
        assert store.published_folders(con, str(directory), "pdfs") == recorded
        assert store.published_folders(con, str(directory)) == {}  # the JSON and HTML's are publishing's
        # a PDF damaged in place, its folder's time put back: the folder is taken at its word
        before = mtime("acct_initech_api")
        damaged.write_bytes(b"%PDF-1.7 damaged")
        os.utime(directory / "acct_initech_api", ns=(before, before))
        # a PDF removed: its folder's time changed, its PDFs are checked and the missing one rendered
        (directory / f"{removed}.pdf").unlink()
        rendered, recorded = run()
        assert rendered == [removed] and damaged.read_bytes() == b"%PDF-1.7 damaged"
        assert recorded == {"acct_hooli_pay": mtime("acct_hooli_pay")}  # checked again once written
        # the damaged file is seen once its folder is not vouched for
        con.execute("delete from billing.rendered_pdf_folders where account_id = 'acct_initech_api'")
        assert run()[0] == ["acct_initech_api/2026-10-01_cycle"]
        # a pass over some documents only records nothing; a folder modified a moment ago is not vouched for
        (directory / f"{removed}.pdf").unlink()
        assert run(every=False) == ([removed], {})
        (directory / f"{removed}.pdf").unlink()
        assert run(settled_ns=60 * 10**9) == ([removed], {"acct_hooli_pay": None})
        assert "acct_hooli_pay" not in store.published_folders(con, str(directory), "pdfs")
    finally:
        con.close()


def test_tally_pdfs_on_a_warehouse_billed_before_pdf_folders_were_recorded(demo, tmp_path):
    workdir, _ = demo
    _, con = copy_of_demo(demo, tmp_path)
    with con:
        con.execute("drop table billing.rendered_pdf_folders")
    arguments = ("pdfs", "--config", str(workdir / "pricing_config"), "--warehouse", str(tmp_path / "tally.duckdb"),
                 "--invoices", str(tmp_path / "invoices"))
    proc = run_tally(*arguments, home=tmp_path / ".dagster")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "21 PDFs in" in proc.stdout and "(0 rendered, 21 unchanged, 0 removed)" in proc.stdout
    with duckdb.connect(str(tmp_path / "tally.duckdb"), read_only=True) as con:
        folders = dict(con.execute("select account_id, mtime_ns from billing.rendered_pdf_folders").fetchall())
    accounts = [path for path in (tmp_path / "invoices").iterdir() if path.is_dir()]
    assert folders == {path.name: path.stat().st_mtime_ns for path in accounts}  # copied: settled long ago
