"""Invoice documents: the invoice JSON and its HTML rendering (jinja2, overridable).

Documents are rendered once per invoice state and stored with the invoice; a final invoice's
stored bytes are what every later run publishes, so a rerun reproduces it byte for byte. The
HTML shows presentation.present's view of the JSON, as the PDF does (pdf.py).
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

import jinja2
import orjson
import polars as pl

from dagster_project.catalog.models import Issuer
from dagster_project.invoicing.presentation import due_date, present
from dagster_project.money import format_money, format_quantity
from dagster_project.rating.usage import DETAIL_FIELDS

DEFAULT_TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "invoice.html"
# Decimal detail values (quantities, prices, amounts before rounding) are shown exactly, unrounded.
_DETAIL_DECIMALS = frozenset(name for name, dtype in DETAIL_FIELDS.items() if dtype.is_decimal())


def invoice_document(header: dict, lines: list[dict], charges: list[dict], issuer: Issuer, customer: dict,
                     credit_draws: list[dict] = (), *, payment_terms_days: int, units: dict[str, str]) -> dict:
    """The invoice as the README's JSON object (key order as in the README), plus `credits`: what each
    grant paid, in the order drawn; `due_date` and `payment_terms_days` (a draft's are those it would
    get); and each line's `unit`, its billable item's in `units` (meters measuring an attribute
    with a unit), else null."""
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
        "due_date": due_date(header["issue_date"], payment_terms_days).isoformat(),
        "payment_terms_days": payment_terms_days,
        "issuer": issuer.model_dump(exclude_none=True),
        "customer": customer,
        "lines": [
            {
                "type": line["line_type"],
                "billable_item": line["billable_item"],
                "description": line["description"],
                "quantity": format_quantity(line["quantity"]),
                "unit": units.get(line["billable_item"]),
                "amount": money(line["amount"]),
                "details": line["details"],
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


def decimal_text(value: pl.Expr) -> pl.Expr:
    """A decimal as text without trailing zeros or exponent (12500, 370.49, 0): format_quantity in Polars."""
    text = value.cast(pl.String)
    trimmed = pl.when(text.str.contains(".", literal=True)).then(
        text.str.strip_chars_end("0").str.strip_chars_end(".")).otherwise(text)
    return pl.when(trimmed == "-0").then(pl.lit("0")).otherwise(trimmed)


def details_json(details: pl.Expr) -> pl.Expr:
    """Each line's breakdown as compact JSON text, its decimals shown exactly (unrounded), in one
    Polars expression over every line: the warehouse keeps it, documents are built from it."""
    def field(name: str) -> pl.Expr:
        return pl.element().struct.field(name)

    shown = pl.element().struct.with_fields(
        [decimal_text(field(name)).alias(name) for name in sorted(_DETAIL_DECIMALS)])
    return pl.concat_str(pl.lit("["), details.list.eval(shown.struct.json_encode()).list.join(","), pl.lit("]"))


def detail_rows(text: str) -> list[dict]:
    """A line's breakdown from its JSON text, without the fields its kind leaves empty."""
    return [{key: value for key, value in row.items() if value is not None} for row in orjson.loads(text)]


def compact_json(rows: list[dict]) -> str:
    return orjson.dumps(rows).decode()


def render_json(document: dict) -> str:
    """Indented JSON, UTF-8. orjson writes the same bytes as json.dumps(indent=2, ensure_ascii=False),
    twenty times faster: the standard library's indenting encoder is pure Python."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"


class _DocumentEnvironment(jinja2.Environment):
    """Templates read documents (plain dicts): `line.amount` looks the key up first, where jinja
    would first try an attribute and fail, which costs an exception for every value shown."""

    def getattr(self, obj, attribute):
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


def template_environment(template_dir: Path | None) -> jinja2.Environment:
    """Templates from template_dir when it has invoice.html, else the packaged default."""
    search = [str(template_dir)] if template_dir and (template_dir / TEMPLATE_NAME).exists() else []
    return _DocumentEnvironment(
        loader=jinja2.FileSystemLoader(search + [str(DEFAULT_TEMPLATE_DIR)]),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_html(document: dict, environment: jinja2.Environment, locale: str) -> str:
    """Templates get the document as `invoice` and what it shows, formatted for the locale, as `view`."""
    return environment.get_template(TEMPLATE_NAME).render(invoice=document, view=present(document, locale))


# Below this many documents one process renders them all; above it, one process per core (a pool
# costs about a second to start, and an HTML document, its money formatted, about 0.65 ms).
PARALLEL_FROM = 5000
_WORKER_ENVIRONMENT: jinja2.Environment | None = None
_WORKER_LOCALE: str | None = None


def render_html_documents(documents: list[dict], template_dir: Path | None, locale: str) -> list[str]:
    """Every document's HTML, in order; on every core when there are many."""
    processes = os.cpu_count() or 1
    if len(documents) < PARALLEL_FROM or processes < 2:
        environment = template_environment(template_dir)
        return [render_html(document, environment, locale) for document in documents]
    size = -(-len(documents) // (processes * 4))
    chunks = [documents[i:i + size] for i in range(0, len(documents), size)]
    # forkserver: the pipeline's process holds DuckDB's threads, which a plain fork must not copy
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context, initializer=_start_worker,
                             initargs=(template_dir, locale)) as pool:
        return [html for rendered in pool.map(_render_chunk, chunks) for html in rendered]


def _start_worker(template_dir: Path | None, locale: str) -> None:
    global _WORKER_ENVIRONMENT, _WORKER_LOCALE
    _WORKER_ENVIRONMENT, _WORKER_LOCALE = template_environment(template_dir), locale


def _render_chunk(documents: list[dict]) -> list[str]:
    return [render_html(document, _WORKER_ENVIRONMENT, _WORKER_LOCALE) for document in documents]
