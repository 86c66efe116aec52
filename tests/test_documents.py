"""Invoice documents: the contract's JSON shape, what they show (presentation.py) and their HTML, which
renders whatever optional fields are absent; the settings documents read (locale, payment terms)."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

from dagster_project.catalog.models import Issuer
from dagster_project.invoicing.documents import invoice_document, render_html, render_json, template_environment

HEADER = {"invoice_number": None, "status": "draft", "kind": "cycle", "account_id": "acct_1", "customer_id": "cus_1",
          "price_plan": "basic", "currency": "USD", "currency_digits": 2, "period_start_date": date(2026, 10, 1),
          "period_end_date": date(2026, 11, 1), "issue_date": date(2026, 11, 4), "subtotal_amount": Decimal("10.5"),
          "credits_applied_amount": Decimal(0), "total_amount": Decimal("12.6"), "wallet_applied_amount": Decimal(0),
          "amount_due_amount": Decimal("12.6")}
LINE = {"line_type": "usage", "billable_item": "calls", "description": "Calls", "quantity": Decimal("1050.000"),
        "amount": Decimal("10.5"),
        "details": [{"kind": "per_unit", "quantity": "1050", "unit_price": "0.01", "amount": "10.5"}]}
CHARGE = {"charge_name": "VAT", "rate": Decimal("0.20"), "amount": Decimal("2.1")}


def document_of(header=HEADER, lines=(LINE,), charges=(CHARGE,), terms=30, customer=None) -> dict:
    return invoice_document(header, list(lines), list(charges), Issuer(name="Acme"),
                            customer or {"customer_id": "cus_1"}, payment_terms_days=terms,
                            units={"calls": "requests"})


def test_the_json_document_has_the_spec_shape_and_exact_text():
    document = document_of()
    assert list(document) == ["invoice_number", "status", "kind", "account_id", "customer_id", "price_plan",
                              "currency", "period_start", "period_end", "issue_date", "due_date",
                              "payment_terms_days", "issuer", "customer", "lines", "subtotal", "credits_applied",
                              "credits", "custom_charges", "total", "wallet_applied", "amount_due"]
    assert document["lines"] == [{"type": "usage", "billable_item": "calls", "description": "Calls",
                                  "quantity": "1050", "unit": "requests", "amount": "10.50",
                                  "details": [{"kind": "per_unit", "quantity": "1050", "unit_price": "0.01",
                                               "amount": "10.5"}]}]
    assert document["custom_charges"] == [{"name": "VAT", "rate": "0.2", "amount": "2.10"}]
    assert (document["subtotal"], document["total"], document["amount_due"]) == ("10.50", "12.60", "12.60")
    # a draft shows the due date it would get: issued Nov 4, net 30
    assert (document["due_date"], document["payment_terms_days"]) == ("2026-12-04", 30)
    assert document_of(terms=0)["due_date"] == "2026-11-04"
    assert render_json(document).endswith("}\n")


def test_html_renders_without_optional_customer_and_issuer_fields():
    html = render_html(document_of(charges=()), template_environment(None), "en_US")
    assert "Draft invoice" in html and ">DRAFT<" in html and "cus_1" in html
    assert "1,050 requests" in html and "$0.01" in html and "$10.50" in html and "Dec 4, 2026" in html


def test_a_template_in_the_config_directory_replaces_the_default(tmp_path):
    (tmp_path / "invoice.html").write_text("{{ invoice.account_id }} owes {{ invoice.amount_due }} "
                                           "({{ view.totals[-1].amount }}, due {{ view.facts[1].value }})\n")
    document = document_of(lines=(), charges=())
    assert render_html(document, template_environment(tmp_path), "de_DE") == \
        "acct_1 owes 12.60 (12,60\xa0$, due 04.12.2026)\n"


def test_a_lines_breakdown_is_exact_text_without_empty_fields():
    import polars as pl

    from dagster_project.invoicing.documents import compact_json, detail_rows, details_json
    from dagster_project.rating.usage import DETAIL, DETAIL_FIELDS

    row = {name: None for name in DETAIL_FIELDS} | {"kind": "tier", "tier": 2, "from": Decimal("1000"),
                                                   "quantity": Decimal("11500.000"), "unit_price": Decimal("0.002"),
                                                   "amount": Decimal("-0.000"), "from_date": date(2026, 10, 1)}
    lines = pl.DataFrame({"details": [[row]]}, schema={"details": pl.List(DETAIL)})
    [text] = lines.select(details_json(pl.col("details"))).to_series().to_list()
    rows = detail_rows(text)
    assert rows == [{"kind": "tier", "tier": 2, "from": "1000", "from_date": "2026-10-01", "quantity": "11500",
                     "unit_price": "0.002", "amount": "0"}]
    assert compact_json(rows) == ('[{"kind":"tier","tier":2,"from":"1000","from_date":"2026-10-01",'
                                  '"quantity":"11500","unit_price":"0.002","amount":"0"}]')


def test_publishing_writes_only_changed_or_damaged_documents_and_removes_gone_ones(tmp_path):
    import hashlib

    import polars as pl

    from dagster_project.invoicing.publishing import documents_on_disk, publish

    directory = tmp_path / "invoices"
    documents = {"a/2026-10-01_cycle": render_json(document_of()),
                 "b/2026-10-01_cycle": render_json(document_of(charges=()))}
    published: dict[str, tuple] = {}

    def run(existing: set[str], locale: str = "en_US"):
        stamps = pl.DataFrame([
            {"invoice_id": i, "digest": hashlib.md5((text + locale).encode()).hexdigest(),
             "published_digest": published.get(i, (None,))[0], "json_bytes": published.get(i, (0, None))[1],
             "html_bytes": published.get(i, (0, 0, None))[2], "is_final": False}
            for i, text in sorted(documents.items())],
            schema={"invoice_id": pl.String, "digest": pl.String, "published_digest": pl.String,
                    "json_bytes": pl.Int64, "html_bytes": pl.Int64, "is_final": pl.Boolean})
        # as the pipeline does (billing_store.gone_documents): the recorded documents whose invoice
        # is gone, or in a directory with nothing recorded, those on disk
        gone = (set(published) or documents_on_disk(directory)) - existing
        report = publish(directory, stamps, lambda ids: [(i, documents[i]) for i in ids], sorted(gone),
                         stamps.height == len(existing), None, locale)
        published.update({i: (d, j, h) for i, d, _, j, h in report.rewritten.iter_rows()})
        return report

    def html(invoice_id: str) -> str:
        return (directory / f"{invoice_id}.html").read_text()

    first = run(set(documents))
    assert (first.written, first.unchanged, first.removed) == (4, 0, 0)
    # the JSON as stored, the HTML rendered from it
    assert (directory / "b" / "2026-10-01_cycle.json").read_text() == documents["b/2026-10-01_cycle"]
    assert html("b/2026-10-01_cycle") == render_html(json.loads(documents["b/2026-10-01_cycle"]),
                                                     template_environment(None), "en_US")
    assert published["a/2026-10-01_cycle"][1:] == ((directory / "a" / "2026-10-01_cycle.json").stat().st_size,
                                                   (directory / "a" / "2026-10-01_cycle.html").stat().st_size)
    again = run(set(documents))
    assert (again.written, again.unchanged) == (0, 4)
    (directory / "a" / "2026-10-01_cycle.json").unlink()  # a damaged directory is repaired
    (directory / "a" / "2026-10-01_cycle.html").write_text("<p>cut sho")
    documents["b/2026-10-01_cycle"] = documents["b/2026-10-01_cycle"].replace('"12.60"', '"13.60"')  # a draft changed
    repaired = run(set(documents))
    assert (repaired.written, repaired.unchanged) == (4, 0)
    assert "$13.60" in html("b/2026-10-01_cycle") and "$12.60" in html("a/2026-10-01_cycle")
    assert sorted(run(set(documents), "de_DE").rewritten["invoice_id"]) == sorted(documents)  # shown otherwise
    assert "12,60\xa0$" in html("a/2026-10-01_cycle")
    gone = documents.pop("b/2026-10-01_cycle")  # a draft whose cycle went away
    assert run({"a/2026-10-01_cycle"}, "de_DE").removed_ids == ["b/2026-10-01_cycle"]
    assert not (directory / "b" / "2026-10-01_cycle.json").exists()
    documents["b/2026-10-01_cycle"] = gone
    published.clear()  # a directory with no record of what it holds is listed
    (directory / "c").mkdir()
    (directory / "c" / "2026-09-01_cycle.json").write_text("{}")
    assert run(set(documents)).removed_ids == ["c/2026-09-01_cycle"]


def test_a_folder_unchanged_since_a_run_checked_its_files_is_not_checked_file_by_file(tmp_path):
    import hashlib
    import os

    import polars as pl

    from dagster_project.invoicing.publishing import publish

    directory = tmp_path / "invoices"
    recent = 60 * 10**9  # "modified less than a minute ago"
    documents = {f"{account}/2026-{month:02d}-01_cycle": render_json(document_of())
                 for account in ("a", "b") for month in (9, 10)}
    published: dict[str, tuple] = {}

    def run(folders: dict[str, int], existing: set[str] | None = None, settled_ns: int | None = None):
        stamps = pl.DataFrame([
            {"invoice_id": i, "digest": hashlib.md5(text.encode()).hexdigest(),
             "published_digest": published.get(i, (None,))[0], "json_bytes": published.get(i, (0, None))[1],
             "html_bytes": published.get(i, (0, 0, None))[2], "is_final": True}
            for i, text in sorted(documents.items())],
            schema={"invoice_id": pl.String, "digest": pl.String, "published_digest": pl.String,
                    "json_bytes": pl.Int64, "html_bytes": pl.Int64, "is_final": pl.Boolean})
        report = publish(directory, stamps, lambda ids: [(i, documents[i]) for i in ids], [],
                         stamps.height == len(existing or documents), None, "en_US", recorded_folders=folders,
                         settled_ns=settled_ns)
        published.update({i: (d, j, h) for i, d, _, j, h in report.rewritten.iter_rows()})
        return report

    def age(account: str) -> int:
        """The folder as a run long ago left it; its modification time."""
        hour_ago = (directory / account).stat().st_mtime_ns - 3600 * 10**9
        os.utime(directory / account, ns=(hour_ago, hour_ago))
        return hour_ago

    def mtime(account: str) -> int:
        return (directory / account).stat().st_mtime_ns

    # the folders a run wrote to are checked again once written, and their times vouch for them...
    assert run({}, settled_ns=0).folders == {"a": mtime("a"), "b": mtime("b")}
    # ...unless they are too recent for that (modified less than settled_ns before; 0.1 s by
    # default, a minute here, so that a slow machine cannot make a folder look settled)
    (directory / "a" / "2026-09-01_cycle.json").unlink()
    repaired = run({}, settled_ns=recent)
    assert (repaired.written, repaired.folders["a"]) == (2, None)
    times = {"a": age("a"), "b": age("b")}
    checked = run({})
    assert (checked.written, checked.unchanged, checked.folders) == (0, 8, times)
    # a folder only just modified does not vouch for its files: they are checked again next time
    (directory / "b" / "notes.txt").write_text("kept by hand")
    assert run(times, settled_ns=recent).folders == {"b": None}
    times["b"] = age("b")
    # vouched for, a folder's files are not looked at: one cut short in place goes unseen...
    with open(directory / "a" / "2026-09-01_cycle.html", "r+") as html:
        html.truncate(10)
    assert (directory / "a").stat().st_mtime_ns == times["a"]
    unseen = run(times)
    assert (unseen.written, unseen.unchanged, unseen.folders) == (0, 8, {})
    # ...and one removed or replaced changes the folder: its files are checked and the one gone written
    (directory / "a" / "2026-09-01_cycle.json").unlink()
    repaired = run(times, settled_ns=recent)
    assert (repaired.written, repaired.unchanged) == (2, 6)
    assert repaired.folders == {"a": None}
    assert (directory / "a" / "2026-09-01_cycle.json").read_text() == documents["a/2026-09-01_cycle"]
    assert (directory / "a" / "2026-09-01_cycle.html").stat().st_size > 10  # written whole again with it
    # a run over some months only does not vouch for a folder: other months' files were not checked
    assert run({}, existing=set(documents) | {"a/2026-08-01_cycle"}).folders == {}


def test_money_is_babels_format_currency_for_every_locale():
    from babel.numbers import format_currency

    from dagster_project.invoicing.presentation import _Formats
    from dagster_project.money import known_locales

    for locale in sorted(known_locales()):
        for currency, value in (("USD", "-1234567.891"), ("JPY", "1234567.5"), ("KWD", "0.0004"), ("EUR", "0")):
            shown = _Formats(locale, currency)
            rounded = Decimal(value).quantize(shown.quantum, rounding="ROUND_HALF_UP")
            expected = format_currency(Decimal(0) if rounded == 0 else rounded, currency, locale=locale)
            assert shown.money(value) == expected, (locale, currency, value)


def test_what_a_document_shows_money_rates_and_bases_in_the_locale():
    from dagster_project.invoicing.presentation import present

    credit = dict(HEADER, credits_applied_amount=Decimal("0.5"), total_amount=Decimal("12.1"),
                  amount_due_amount=Decimal("12.1"))
    view = present(document_of(header=credit, charges=[dict(CHARGE, rate=Decimal("0.19"), amount=Decimal("1.9"))]),
                   "en_US")
    assert view["totals"] == [
        {"label": "Subtotal", "amount": "$10.50"}, {"label": "Credits applied", "amount": "-$0.50"},
        {"label": "VAT 19% of $10.00", "amount": "$1.90"}, {"label": "Total", "amount": "$12.10"},
        {"label": "Paid from wallet", "amount": "$0.00"}, {"label": "Amount due (USD)", "amount": "$12.10"}]
    assert view["lines"] == [{"name": "Calls", "quantity": "1,050 requests", "unit_price": "$0.01",
                              "amount": "$10.50", "breakdown": []}]
    german = present(document_of(terms=14), "de_DE")
    assert german["facts"][:3] == [{"label": "Issue date", "value": "04.11.2026"},
                                   {"label": "Due date", "value": "18.11.2026"},
                                   {"label": "Payment terms", "value": "Net 14 days"}]
    # numbers, money and percentages are the locale's; the words are English
    assert german["totals"][2] == {"label": "VAT 20\xa0% of 10,50\xa0$", "amount": "2,10\xa0$"}
    assert german["lines"][0]["quantity"] == "1.050 requests"


def test_a_negative_zero_never_shows_and_breakdowns_are_rounded_for_display():
    from dagster_project.invoicing.presentation import present

    tiers = [{"kind": "tier", "tier": 1, "from": "0", "up_to": "100000", "quantity": "100000", "unit_price": "0",
              "flat_fee": "0", "amount": "0"},
             {"kind": "tier", "tier": 2, "from": "100000", "up_to": "1000000", "quantity": "677794",
              "unit_price": "0.0004", "flat_fee": "10", "amount": "281.1176"},
             {"kind": "tier", "tier": 3, "from": "1000000", "quantity": "0", "unit_price": "0.0002",
              "flat_fee": "0", "amount": "0"}]
    tiered = dict(LINE, quantity=Decimal("777794"), amount=Decimal("281.12"), details=tiers)
    rule = {"line_type": "pricing_rule", "billable_item": None, "description": None, "quantity": None,
            "amount": Decimal("-0.004"), "details": [{"kind": "pricing_rule", "rule": "loyalty_discount",
                                                     "amount": "-0.004"}]}
    tokens = dict(LINE, billable_item="tokens", description="Input tokens", quantity=Decimal("9799959"),
                  amount=Decimal("29.40"), details=[{"kind": "per_unit", "quantity": "9799959",
                                                     "unit_price": "0.000003", "amount": "29.399877"}])
    negative_zero = dict(HEADER, wallet_applied_amount=Decimal("-0.00"), credits_applied_amount=Decimal("-0"))
    view = present(document_of(header=negative_zero, lines=(tiered, rule, tokens), charges=()), "en_US")
    api, discount, input_tokens = view["lines"]
    assert (api["unit_price"], api["quantity"]) == ("tiered", "777,794 requests")
    # the tiers used, their figures rounded: the JSON keeps 281.1176
    assert api["breakdown"] == [
        {"label": "Tier 1: 0 – 100,000", "quantity": "100,000", "unit_price": "$0.00", "amount": "$0.00"},
        {"label": "Tier 2: 100,000 – 1,000,000, flat fee $10.00", "quantity": "677,794", "unit_price": "$0.0004",
         "amount": "$281.12"}]
    # a line without a name is named after its rule, never shown as an id
    assert (discount["name"], discount["amount"]) == ("Loyalty discount", "$0.00")
    assert (input_tokens["unit_price"], input_tokens["breakdown"]) == ("$0.000003", [])
    texts = str(view)
    assert "-$0.00" not in texts and "-0" not in texts and "basic" not in texts  # basic: the plan's id


def test_notes_are_titled_as_notes_and_name_the_invoice_they_adjust():
    from dagster_project.invoicing.presentation import present

    note = dict(HEADER, kind="credit_note", status="final", invoice_number="CN-2026-000001")
    document = document_of(header=note) | {"adjusts_invoice_number": "INV-2026-000007", "reason": "wrong reading"}
    view = present(document, "en_US")
    assert (view["heading"], view["is_draft"]) == ("Credit note CN-2026-000001", False)
    assert view["references"] == ["Adjusts invoice INV-2026-000007", "Reason: wrong reading"]
    assert [fact["label"] for fact in view["facts"]] == ["Credit note number", "Issue date", "Period", "Account"]
    assert view["totals"][-1] == {"label": "Amount credited (USD)", "amount": "$12.60"}
    html = render_html(document, template_environment(None), "en_US")
    assert "Credit note CN-2026-000001" in html and "Adjusts invoice INV-2026-000007" in html
    debit = present(document | {"kind": "debit_note", "invoice_number": "DN-2026-000001"}, "en_US")
    assert debit["heading"] == "Debit note DN-2026-000001" and debit["facts"][2]["label"] == "Due date"


def test_locale_and_payment_terms_are_checked_where_billing_yaml_is_read(tmp_path):
    import shutil

    import pytest

    from dagster_project.catalog import ConfigError, load_catalog
    from tests.conftest import ROOT

    config = tmp_path / "config"
    shutil.copytree(ROOT / "pricing_config", config)
    settings = load_catalog(config).billing
    assert (settings.locale, settings.payment_terms_days) == ("en_US", 30)
    billing = (config / "billing.yaml").read_text()
    (config / "billing.yaml").write_text(billing + "locale: xx_YY\npayment_terms_days: -1\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(config)
    assert [str(problem) for problem in caught.value.problems] == [
        "billing.yaml: locale: 'xx_YY' is not a locale Babel knows: use a CLDR identifier such as en_US, en_GB, "
        "de_DE, fr_CH, ja_JP",
        "billing.yaml: payment_terms_days: input should be greater than or equal to 0"]
    (config / "billing.yaml").write_text(billing + "locale: de_CH\npayment_terms_days: 10\n")
    assert (load_catalog(config).billing.locale, load_catalog(config).billing.payment_terms_days) == ("de_CH", 10)


def test_a_customers_payment_terms_are_a_whole_number_of_days(tmp_path):
    import shutil

    from dagster_project.catalog import load_catalog
    from dagster_project.ingestion.reference_data import read_reference_data
    from tests.conftest import CASES

    case = CASES / "01_stripe_payments"
    data = tmp_path / "data"
    shutil.copytree(case / "data", data, ignore=shutil.ignore_patterns("events"))
    (data / "customers.csv").write_text("customer_id,name,payment_terms_days\ncus_1,Globex,14\ncus_2,Initech,-5\n"
                                        "cus_3,Hooli,abc\ncus_4,Stark,\n")
    problems = [str(problem) for problem in read_reference_data(data, load_catalog(case / "pricing_config")).problems]
    assert "customers.csv: line 3: payment_terms_days: '-5' is not a number of days from 0 to 3650" in problems
    assert "customers.csv: line 4: payment_terms_days: 'abc' is not an integer" in problems
    assert not [problem for problem in problems if "line 2:" in problem or "line 5:" in problem]
