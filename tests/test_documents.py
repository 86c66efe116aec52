"""Invoice documents: the SPEC's JSON shape, and HTML that renders whatever optional fields are absent."""
from __future__ import annotations

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


def test_the_json_document_has_the_spec_shape_and_exact_text():
    document = invoice_document(HEADER, [LINE], [CHARGE], Issuer(name="Acme"), {"customer_id": "cus_1"})
    assert list(document) == ["invoice_number", "status", "kind", "account_id", "customer_id", "price_plan",
                              "currency", "period_start", "period_end", "issue_date", "issuer", "customer", "lines",
                              "subtotal", "credits_applied", "credits", "custom_charges", "total", "wallet_applied",
                              "amount_due"]
    assert document["lines"] == [{"type": "usage", "billable_item": "calls", "description": "Calls",
                                  "quantity": "1050", "amount": "10.50",
                                  "details": [{"kind": "per_unit", "quantity": "1050", "unit_price": "0.01",
                                               "amount": "10.5"}]}]
    assert document["custom_charges"] == [{"name": "VAT", "rate": "0.2", "amount": "2.10"}]
    assert (document["subtotal"], document["total"], document["amount_due"]) == ("10.50", "12.60", "12.60")
    assert render_json(document).endswith("}\n")


def test_html_renders_without_optional_customer_and_issuer_fields():
    document = invoice_document(HEADER, [LINE], [], Issuer(name="Acme"), {"customer_id": "cus_1"})
    html = render_html(document, template_environment(None))
    assert "Draft invoice" in html and "cus_1" in html and "1050 × 0.01 = 10.5" in html


def test_a_template_in_the_config_directory_replaces_the_default(tmp_path):
    (tmp_path / "invoice.html").write_text("{{ invoice.account_id }} owes {{ invoice.amount_due }}\n")
    document = invoice_document(HEADER, [], [], Issuer(name="Acme"), {"customer_id": "cus_1"})
    assert render_html(document, template_environment(tmp_path)) == "acct_1 owes 12.60\n"


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

    from dagster_project.invoicing.publishing import publish

    documents = {"a/2026-10-01_cycle": ('{"total": "1.00"}', "<p>1.00</p>"),
                 "b/2026-10-01_cycle": ('{"total": "2.00"}', "<p>2.00</p>")}
    published: dict[str, str] = {}

    def run(existing: set[str]):
        stamps = pl.DataFrame([
            {"invoice_id": i, "digest": hashlib.md5((j + h).encode()).hexdigest(), "json_bytes": len(j.encode()),
             "html_bytes": len(h.encode()), "published_digest": published.get(i)}
            for i, (j, h) in sorted(documents.items())])
        report = publish(tmp_path, stamps, lambda ids: [(i, *documents[i]) for i in ids], existing)
        published.update(dict(report.rewritten.iter_rows()))
        return report

    first = run(set(documents))
    assert (first.written, first.unchanged, first.removed) == (4, 0, 0)
    assert (tmp_path / "b" / "2026-10-01_cycle.html").read_text() == "<p>2.00</p>"
    again = run(set(documents))
    assert (again.written, again.unchanged) == (0, 4)
    (tmp_path / "a" / "2026-10-01_cycle.json").unlink()  # a damaged directory is repaired
    documents["b/2026-10-01_cycle"] = ('{"total": "3.00"}', "<p>3.00</p>")  # a draft that changed
    repaired = run(set(documents))
    assert (repaired.written, repaired.unchanged) == (4, 0)
    assert (tmp_path / "b" / "2026-10-01_cycle.json").read_text() == '{"total": "3.00"}'
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "2026-09-01_cycle.json").write_text("{}")  # an invoice that no longer exists
    assert run(set(documents)).removed_ids == ["c/2026-09-01_cycle"]
    assert not (tmp_path / "c" / "2026-09-01_cycle.json").exists()
