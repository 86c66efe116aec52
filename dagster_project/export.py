"""`tally export invoices`: a month's final invoices and notes with their lines, from the published
warehouse, as CSV (one row per line) or JSON (one object per document, its lines inside).

Read-only and from the publication (publication.py), like `tally entitlements`: an export never
waits for a run nor sees half of one. Money is text with the currency's minor-unit digits, as on
the documents; quantities are exact decimal text.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import duckdb
import orjson

from dagster_project.money import format_money, format_quantity, minor_unit_digits

DOCUMENT_COLUMNS = (
    "invoice_id", "invoice_number", "kind", "adjusts_invoice_number", "replaces_invoice_number",
    "voided_by_invoice_number", "reason", "issue_date", "account_id", "customer_id", "customer_name", "price_plan",
    "currency", "period_start", "period_end", "revenue_sign", "subtotal", "credits_applied", "custom_charges",
    "total", "wallet_applied", "amount_due")
LINE_COLUMNS = ("line_number", "line_type", "billable_item", "description", "quantity", "line_amount")
_MONEY = ("subtotal", "credits_applied", "custom_charges", "total", "wallet_applied", "amount_due")

_DOCUMENTS = """
    select invoice_id, invoice_number, kind, adjusts_invoice_number, replaces_invoice_number,
           voided_by_invoice_number, adjustment_reason as reason, issue_date, account_id, customer_id,
           customer_name, price_plan, currency, period_start_date as period_start, period_end_date as period_end,
           revenue_sign, subtotal_amount as subtotal, credits_applied_amount as credits_applied,
           custom_charges_amount as custom_charges, total_amount as total, wallet_applied_amount as wallet_applied,
           amount_due_amount as amount_due
    from marts.fct_invoices
    where status = 'final' and billing_month = ?
    order by issue_date, invoice_number
"""
_LINES = """
    select invoice_id, line_number, line_type, billable_item, description, quantity, amount as line_amount
    from marts.fct_invoice_lines
    where invoice_id in (select invoice_id from marts.fct_invoices where status = 'final' and billing_month = ?)
    order by invoice_id, line_number
"""


def month_documents(con: duckdb.DuckDBPyConnection, month: date) -> list[dict]:
    """The final invoices and notes issued in the month (issue date's month), in issue order, each
    with its lines; values as export text."""
    documents = [dict(zip(DOCUMENT_COLUMNS, row, strict=True)) for row in con.execute(_DOCUMENTS, [month]).fetchall()]
    lines: dict[str, list[dict]] = {}
    for invoice_id, *values in con.execute(_LINES, [month]).fetchall():
        lines.setdefault(invoice_id, []).append(dict(zip(LINE_COLUMNS, values, strict=True)))
    for document in documents:
        digits = minor_unit_digits(document["currency"])
        for column in _MONEY:
            document[column] = format_money(Decimal(document[column]), digits)
        for column in ("issue_date", "period_start", "period_end"):
            document[column] = document[column].isoformat()
        document["lines"] = [line | {"quantity": format_quantity(line["quantity"]),
                                     "line_amount": format_money(Decimal(line["line_amount"]), digits)}
                             for line in lines.get(document["invoice_id"], [])]
    return documents


def as_csv(documents: list[dict]) -> str:
    """One row per line, its document's columns repeated; a document without lines has one row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(DOCUMENT_COLUMNS + LINE_COLUMNS)
    for document in documents:
        head = [document[column] for column in DOCUMENT_COLUMNS]
        for line in document["lines"] or [dict.fromkeys(LINE_COLUMNS)]:
            writer.writerow(head + [line[column] for column in LINE_COLUMNS])
    return out.getvalue()


def as_json(month: date, documents: list[dict]) -> str:
    return orjson.dumps({"month": month.strftime("%Y-%m"), "documents": documents},
                        option=orjson.OPT_INDENT_2).decode() + "\n"
