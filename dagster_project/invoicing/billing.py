"""One billing run over a range of billing months: rate, assemble, finalize, render.

A billing month is the month of an invoice's issue date. Invoices are numbered and (with issue 3)
draw credits in issue-date order, so processing months in order processes invoices in order.
Final invoices already stored are never recomputed; everything else in the range is.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from dagster_project.catalog import Catalog
from dagster_project.invoicing.assembly import AssembledInvoices, Ledgers, assemble
from dagster_project.invoicing.documents import (
    compact_json,
    detail_rows,
    details_json,
    invoice_document,
    render_html_documents,
    render_json,
)
from dagster_project.invoicing.finalization import finalize
from dagster_project.money import WORK, minor_unit_digits
from dagster_project.rating.fees import rate_fees
from dagster_project.rating.licenses import rate_licenses
from dagster_project.rating.rate_cards import (
    fee_cards,
    license_cards,
    plans_with_fees_in_advance,
    usage_cards,
    usage_tiers,
)
from dagster_project.rating.usage import rate_usage


@dataclass(frozen=True)
class BillingRange:
    """The invoices a run is about: issued in [first_month, last_month], as of a date."""

    as_of: date
    first_month: date  # first day of the first billing month
    last_month: date   # first day of the last billing month


@dataclass(frozen=True)
class BillingResult:
    invoices: pl.DataFrame      # billing.invoices rows (new drafts and new finals)
    lines: pl.DataFrame
    charges: pl.DataFrame
    credit_draws: pl.DataFrame
    wallet_draws: pl.DataFrame  # final invoices only
    rule_log: pl.DataFrame


def billing_month(issue_date: pl.Expr) -> pl.Expr:
    return issue_date.dt.truncate("1mo")


def invoices_due(catalog: Catalog, span: BillingRange, cycles: pl.DataFrame, accounts: pl.DataFrame,
                 stored: pl.DataFrame) -> pl.LazyFrame:
    """The invoices issued in the range that are not final yet.

    A cycle invoice for every closed cycle; an opening invoice on the assignment's start date for
    cycle 0 of a plan with in-advance fees. Each carries the facts of the cycles its fees pay for:
    its own (arrears_*) and, for in-advance fees, the next cycle of the assignment (advance_*).
    cycles: every cycle (marts.fct_billing_cycles); accounts: account_id, customer_id, tax_rate;
    stored: billing.invoices (invoice_id, status, ...).
    """
    all_cycles = cycles.lazy()
    cycle_invoices = (all_cycles.filter(pl.col("is_closed"))
                      .with_columns(pl.lit("cycle").alias("kind"))
                      .join(_cycle_facts(all_cycles, "arrears", shift=0), on=["assignment_id", "cycle_index"],
                            how="left")
                      .join(_cycle_facts(all_cycles, "advance", shift=1), on=["assignment_id", "cycle_index"],
                            how="left"))
    advance_plans = plans_with_fees_in_advance(catalog)
    openings = (all_cycles.filter((pl.col("cycle_index") == 0) & pl.col("price_plan").is_in(advance_plans)
                                  & (pl.col("assignment_start_date") <= span.as_of))
                .with_columns(pl.lit("opening").alias("kind"), pl.col("assignment_start_date").alias("issue_date"))
                .join(_cycle_facts(all_cycles, "advance", shift=0), on=["assignment_id", "cycle_index"], how="left"))
    finals = stored.filter(pl.col("status") == "final").select("invoice_id")
    digits = {name: minor_unit_digits(plan.currency) for name, plan in catalog.price_plans.items()}
    # an opening invoice pays for nothing in arrears: its arrears_* columns are null
    return (pl.concat([cycle_invoices, openings], how="diagonal")
            .with_columns(billing_month(pl.col("issue_date")).alias("billing_month"))
            .filter(pl.col("billing_month").is_between(span.first_month, span.last_month))
            .with_columns(
                pl.concat_str(pl.col("account_id"), pl.lit("/"), pl.col("period_start_date").dt.strftime("%Y-%m-%d"),
                              pl.lit("_"), pl.col("kind")).alias("invoice_id"),
                pl.col("price_plan").replace_strict(digits, return_dtype=pl.Int32).alias("currency_digits"))
            .join(finals.lazy(), on="invoice_id", how="anti")
            .join(accounts.lazy().select("account_id", "customer_id", pl.col("tax_rate").cast(WORK)),
                  on="account_id", how="left")
            .select("invoice_id", "account_id", "customer_id", "price_plan", "kind", "cycle_id", "assignment_id",
                    "cycle_index", "period_start_date", "period_end_date", "period_days", "full_period_days",
                    "issue_date", "billing_month", "currency", "currency_digits", "tax_rate",
                    pl.selectors.starts_with("arrears_"), pl.selectors.starts_with("advance_")))


def _cycle_facts(cycles: pl.LazyFrame, prefix: str, shift: int) -> pl.LazyFrame:
    """The facts of cycle (index + shift) of each assignment, keyed by (assignment_id, index)."""
    return cycles.select(
        "assignment_id", (pl.col("cycle_index") - shift).alias("cycle_index"),
        pl.col("cycle_index").alias(f"{prefix}_cycle_index"),
        pl.col("period_start_date").alias(f"{prefix}_start_date"),
        pl.col("period_end_date").alias(f"{prefix}_end_date"),
        pl.col("period_days").alias(f"{prefix}_days"), pl.col("full_period_days").alias(f"{prefix}_full_days"))


def rate(catalog: Catalog, due: pl.LazyFrame, meter_usage: pl.DataFrame,
         license_intervals: pl.DataFrame) -> pl.DataFrame:
    """Rated rate-card lines (usage, licenses, fixed fees) of the invoices due.

    meter_usage: cycle_id, meter_name, quantity, event_count; license_intervals: marts.fct_license_intervals.
    """
    rounding = catalog.billing.rounding
    cycle_due = due.filter(pl.col("kind") == "cycle")
    # quantities arrive in the warehouse's DECIMAL(38, 9); magnitude.out_of_range has held back
    # the accounts whose amounts would not fit the working type
    usage = (meter_usage.lazy().join(cycle_due.select("invoice_id", "cycle_id", "price_plan"), on="cycle_id")
             .with_columns(pl.col("quantity").cast(WORK)))
    return pl.concat([
        rate_usage(usage, usage_cards(catalog), usage_tiers(catalog), rounding),
        rate_licenses(cycle_due, license_intervals.lazy(), license_cards(catalog), rounding),
        rate_fees(due, fee_cards(catalog), rounding),
    ], how="vertical").collect()


def issue(catalog: Catalog, span: BillingRange, due: pl.LazyFrame, lines: pl.DataFrame, usage: pl.DataFrame,
          accounts: pl.DataFrame, ledgers: Ledgers, stored: pl.DataFrame, customers: pl.DataFrame,
          current_batch: int | None, template_dir: Path | None = None) -> BillingResult:
    """Assemble, finalize and render the invoices due from their rated lines.

    usage: cycle_id, meter_name, quantity, event_count (rule variables); accounts: every column of
    accounts.csv as text; current_batch: the latest event load batch, which a newly final invoice
    has seen (later batches' events for its cycle are late).
    """
    invoices = due.collect()
    usage_by_invoice = usage.join(invoices.select("invoice_id", "cycle_id"), on="cycle_id", how="inner")
    assembled = assemble(invoices, lines, usage_by_invoice, accounts, ledgers, catalog)
    last_sequences = (stored.lazy().filter(pl.col("status") == "final")
                      .group_by("numbering_period").agg(pl.col("invoice_sequence").max().alias("last_sequence"))
                      .collect())
    headers = finalize(assembled.headers, span.as_of, catalog.billing.invoice_numbering, last_sequences)
    headers = headers.with_columns(
        pl.when(pl.col("status") == "final").then(pl.lit(current_batch, dtype=pl.Int32))
        .alias("finalized_after_batch"),
        pl.when(pl.col("status") == "final").then(pl.lit(catalog.billing.invoice_numbering.prefix))
        .alias("numbering_prefix"),
        pl.lit(span.as_of).alias("computed_as_of"))
    # each line's breakdown as JSON once: the warehouse keeps it, the documents are built from it
    details = [detail_rows(text) for text in assembled.lines.select(details_json(pl.col("details"))).to_series()]
    lines = assembled.lines.with_columns(
        pl.Series("details_json", [compact_json(rows) for rows in details], dtype=pl.String)).drop("details")
    headers = _with_documents(catalog, headers, lines, details, assembled, customers, template_dir)
    finals = headers.filter(pl.col("status") == "final")
    wallet_draws = finals.filter(pl.col("wallet_applied_amount") > 0).select(
        "invoice_id", "account_id", pl.col("issue_date").alias("draw_date"),
        pl.col("wallet_applied_amount").alias("amount"))
    return BillingResult(invoices=headers, lines=lines, charges=assembled.charges,
                         credit_draws=assembled.credit_draws, wallet_draws=wallet_draws, rule_log=assembled.rule_log)


def _with_documents(catalog: Catalog, headers: pl.DataFrame, lines: pl.DataFrame, details: list[list[dict]],
                    assembled: AssembledInvoices, customers: pl.DataFrame, template_dir: Path | None) -> pl.DataFrame:
    """Render each invoice's JSON and HTML (one document per invoice: the output is per invoice)."""
    customers = {row["customer_id"]: row for row in customers.iter_rows(named=True)}

    def by_invoice(frame: pl.DataFrame, order: str) -> dict[str, list[dict]]:
        grouped: dict[str, list[dict]] = {}
        for row in frame.sort("invoice_id", order).iter_rows(named=True):
            grouped.setdefault(row["invoice_id"], []).append(row)
        return grouped

    lines = by_invoice(lines.with_columns(pl.Series("details", details, dtype=pl.Object)), "line_number")
    charges = by_invoice(assembled.charges, "charge_number")
    draws = by_invoice(assembled.credit_draws, "draw_number")
    documents = [
        invoice_document(header, lines.get(header["invoice_id"], []), charges.get(header["invoice_id"], []),
                         catalog.billing.issuer, _customer(customers.get(header["customer_id"]), header["customer_id"]),
                         credit_draws=draws.get(header["invoice_id"], []))
        for header in headers.iter_rows(named=True)]
    return headers.with_columns(
        pl.Series("document_json", [render_json(document) for document in documents], dtype=pl.String),
        pl.Series("document_html", render_html_documents(documents, template_dir), dtype=pl.String))


def _customer(row: dict | None, customer_id: str | None) -> dict:
    if row is None:
        return {"customer_id": customer_id}
    customer = {"customer_id": row["customer_id"], "name": row["customer_name"], "email": row["email"],
                "address": row["address"]}
    return {k: v for k, v in customer.items() if v is not None}
