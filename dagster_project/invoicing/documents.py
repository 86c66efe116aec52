"""Invoice documents: the JSON of SPEC 5 and its HTML rendering (jinja2, overridable).

Documents are rendered once per invoice state and stored with the invoice; a final invoice's
stored bytes are what every later run publishes, so a rerun reproduces it byte for byte.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jinja2

from dagster_project.catalog.models import Issuer
from dagster_project.rating.money import format_money, format_quantity
from dagster_project.rating.usage import DETAIL_FIELDS

DEFAULT_TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "invoice.html"
# Decimal detail values (quantities, prices, amounts before rounding) are shown exactly, unrounded.
_DETAIL_DECIMALS = frozenset(name for name, dtype in DETAIL_FIELDS.items() if dtype.is_decimal())


def invoice_document(header: dict, lines: list[dict], charges: list[dict], issuer: Issuer, customer: dict,
                     credit_draws: list[dict] = ()) -> dict:
    """The invoice as SPEC 5's JSON object (key order as in the SPEC), plus `credits`: what each
    grant paid, in the order drawn."""
    digits = header["currency_digits"]

    def money(value) -> str:
        return format_money(Decimal(value), digits)

    return {
        "invoice_number": header["invoice_number"],
        "status": header["status"],
        "kind": header["kind"],
        "account_id": header["account_id"],
        "customer_id": header["customer_id"],
        "price_plan": header["price_plan"],
        "currency": header["currency"],
        "period_start": header["period_start_date"].isoformat(),
        "period_end": header["period_end_date"].isoformat(),
        "issue_date": header["issue_date"].isoformat(),
        "issuer": issuer.model_dump(exclude_none=True),
        "customer": customer,
        "lines": [
            {
                "type": line["line_type"],
                "billable_item": line["billable_item"],
                "description": line["description"],
                "quantity": format_quantity(line["quantity"]),
                "amount": money(line["amount"]),
                "details": [_detail(d) for d in line["details"]],
            }
            for line in lines
        ],
        "subtotal": money(header["subtotal_amount"]),
        "credits_applied": money(header["credits_applied_amount"]),
        "credits": [{"grant_id": d["grant_id"], "amount": money(d["amount"])} for d in credit_draws],
        "custom_charges": [
            {"name": c["charge_name"], "rate": format_quantity(c["rate"]), "amount": money(c["amount"])}
            for c in charges
        ],
        "total": money(header["total_amount"]),
        "wallet_applied": money(header["wallet_applied_amount"]),
        "amount_due": money(header["amount_due_amount"]),
    }


def _detail(row: dict) -> dict:
    out = {}
    for key, value in row.items():
        if value is None:
            continue
        if key in _DETAIL_DECIMALS:
            value = format_quantity(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out


def details_json(details: list[dict]) -> str:
    """A line's breakdown as compact JSON text, for the warehouse's invoice lines."""
    return json.dumps([_detail(d) for d in details], ensure_ascii=False, separators=(",", ":"))


def render_json(document: dict) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def template_environment(template_dir: Path | None) -> jinja2.Environment:
    """Templates from template_dir when it has invoice.html, else the packaged default."""
    search = [str(template_dir)] if template_dir and (template_dir / TEMPLATE_NAME).exists() else []
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search + [str(DEFAULT_TEMPLATE_DIR)]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_html(document: dict, environment: jinja2.Environment) -> str:
    return environment.get_template(TEMPLATE_NAME).render(invoice=document)
