"""Invoice documents: the invoice JSON and its HTML rendering (jinja2, overridable).

The JSON document is made once per invoice state and stored with the invoice; a final invoice's
stored bytes are what every later run publishes, so a rerun reproduces it byte for byte. The
HTML is rendered from the JSON when it is published (publishing.py) and shows
presentation.present's view of it, as the PDF does (pdf.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import jinja2
import orjson
import polars as pl

from dagster_project.catalog.models import Issuer
from dagster_project.invoicing.presentation import due_date, present
from dagster_project.money import format_money, format_quantity
from dagster_project.parallel import map_in_processes, worker_count
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


def html_rendering(template_dir: Path | None, locale: str) -> str:
    """What a document's HTML depends on besides its JSON: the template, the presentation and the locale."""
    search = template_dir / TEMPLATE_NAME if template_dir and (template_dir / TEMPLATE_NAME).exists() else None
    template = (search or DEFAULT_TEMPLATE_DIR / TEMPLATE_NAME).read_bytes()
    presentation = Path(__file__).with_name("presentation.py").read_bytes()
    return hashlib.md5(template + presentation + locale.encode()).hexdigest()


def with_correction_fields(document: dict, header: dict) -> dict:
    """A note names the invoice it corrects, an invoice issued by a void the one it replaces, both
    why: right after the document's kind."""
    fields = {name: header.get(column) for name, column in (
        ("adjusts_invoice_number", "adjusts_invoice_number"), ("replaces_invoice_number", "replaces_invoice_number"),
        ("reason", "adjustment_reason")) if header.get(column) is not None}
    if not fields:
        return document
    items = list(document.items())
    at = [key for key, _ in items].index("kind") + 1
    return dict(items[:at] + list(fields.items()) + items[at:])


@dataclass(frozen=True)
class DocumentSettings:
    issuer: Issuer
    payment_terms_days: int       # billing.yaml's; a customer's own replace them
    units: dict[str, str]         # billable item -> the unit of its quantity


# Below this many documents one process makes them all; above it, one process per core (starting
# the workers costs about a second, a document about 0.15 ms).
PARALLEL_FROM = 5000
_CHUNKS_PER_WORKER = 8
_CUSTOMER_COLUMNS = {"customer_name": "customer_name", "email": "customer_email", "address": "customer_address",
                     "tax_id": "customer_tax_id", "payment_terms_days": "customer_payment_terms_days"}


def with_documents(headers: pl.DataFrame, lines: pl.DataFrame, charges: pl.DataFrame, credit_draws: pl.DataFrame,
                   customers: pl.DataFrame, settings: DocumentSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every invoice's and note's JSON document (headers, sorted by invoice_id, get document_json),
    and each line's breakdown as compact JSON without the fields its kind leaves empty (lines,
    sorted by invoice_id and line_number: details_json rewritten). lines.details_json may hold
    nulls for those fields (as Polars encodes a breakdown). A note shows the credit it returns as
    it shows every amount: positive, in its own direction. customers: dim_customers' columns."""
    headers = headers.join(customers.select("customer_id", *_CUSTOMER_COLUMNS).rename(_CUSTOMER_COLUMNS),
                           on="customer_id", how="left").sort("invoice_id")
    parts = _chunks(headers, lines.sort("invoice_id", "line_number"), charges.sort("invoice_id", "charge_number"),
                    credit_draws.with_columns(pl.col("amount").abs()).sort("invoice_id", "draw_number"), settings)
    if headers.height < PARALLEL_FROM or worker_count() < 2:
        results = [_documents_of(part) for part in parts]
    else:
        results = list(map_in_processes(_documents_of, parts))
    documents = [text for texts, _ in results for text in texts]
    details = [text for _, texts in results for text in texts]
    return (headers.drop(list(_CUSTOMER_COLUMNS.values())).with_columns(
                pl.Series("document_json", documents, dtype=pl.String)),
            lines.sort("invoice_id", "line_number").with_columns(pl.Series("details_json", details, dtype=pl.String)))


def _chunks(headers: pl.DataFrame, lines: pl.DataFrame, charges: pl.DataFrame, draws: pl.DataFrame,
            settings: DocumentSettings):
    """Consecutive runs of invoices with their lines, charges and draws (every frame sorted by invoice_id)."""
    size = max(1, -(-headers.height // (worker_count() * _CHUNKS_PER_WORKER)))
    for start in range(0, max(headers.height, 1), size):
        part = headers.slice(start, size)
        if part.is_empty():
            yield part, lines.clear(), charges.clear(), draws.clear(), settings
            return
        first, last = part["invoice_id"][0], part["invoice_id"][-1]
        yield (part, *(_rows_between(frame, first, last) for frame in (lines, charges, draws)), settings)


def _rows_between(frame: pl.DataFrame, first: str, last: str) -> pl.DataFrame:
    """The rows of invoices first to last of a frame sorted by invoice_id."""
    ids = frame["invoice_id"]
    low, high = ids.search_sorted(first, side="left"), ids.search_sorted(last, side="right")
    return frame.slice(low, high - low)


def _documents_of(part) -> tuple[list[str], list[str]]:
    """The JSON documents of a run of invoices, and their lines' breakdowns (in the frames' order)."""
    headers, lines, charges, draws, settings = part

    def by_invoice(frame: pl.DataFrame) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for row in frame.iter_rows(named=True):
            grouped.setdefault(row["invoice_id"], []).append(row)
        return grouped

    details = []
    grouped_lines = by_invoice(lines)
    for rows in grouped_lines.values():
        for line in rows:
            line["details"] = detail_rows(line["details_json"])
            details.append(compact_json(line["details"]))
    grouped_charges, grouped_draws = by_invoice(charges), by_invoice(draws)
    documents = []
    for header in headers.iter_rows(named=True):
        invoice_id = header["invoice_id"]
        terms = header["customer_payment_terms_days"]
        document = invoice_document(header, grouped_lines.get(invoice_id, []), grouped_charges.get(invoice_id, []),
                                    settings.issuer, _customer(header), credit_draws=grouped_draws.get(invoice_id, []),
                                    payment_terms_days=settings.payment_terms_days if terms is None else terms,
                                    units=settings.units)
        documents.append(render_json(with_correction_fields(document, header)))
    return documents, details


def _customer(header: dict) -> dict:
    """The customer block: what dim_customers has of the invoice's customer (its id at least)."""
    customer = {"customer_id": header["customer_id"], "name": header["customer_name"],
                "email": header["customer_email"], "address": header["customer_address"],
                "tax_id": header["customer_tax_id"]}
    return {k: v for k, v in customer.items() if v is not None}
