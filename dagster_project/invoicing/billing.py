"""One billing run over a range of billing months: rate, assemble, finalize, make the documents.

A billing month is the month of an invoice's issue date. Invoices are numbered and (with issue 3)
draw credits in issue-date order, so processing months in order processes invoices in order.
Final invoices already stored are never recomputed; everything else in the range is. A run whose
range holds its own date also issues corrections (corrections.py): the invoices that replace
voided ones, and the notes of voids and of late events.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from dagster_project.catalog import Catalog
from dagster_project.invoicing.assembly import Ledgers, assemble
from dagster_project.invoicing.corrections import (
    InvoiceHistory,
    combined,
    late_event_notes,
    no_history,
    number_notes,
    reissues_due,
    restatements_due,
    void_credit_notes,
    with_correction_columns,
)
from dagster_project.invoicing.documents import DocumentSettings, details_json, with_documents
from dagster_project.invoicing.finalization import finalize, last_sequences
from dagster_project.invoicing.kinds import NOTE_KINDS
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

    @property
    def issues_corrections(self) -> bool:
        """Corrections are issued on the run's date, so by a run whose range holds it (not by a
        backfill of other months)."""
        return self.first_month <= self.as_of.replace(day=1) <= self.last_month


@dataclass(frozen=True)
class BillingResult:
    invoices: pl.DataFrame      # billing.invoices rows (new drafts and new finals, notes among them)
    lines: pl.DataFrame
    charges: pl.DataFrame
    credit_draws: pl.DataFrame
    wallet_draws: pl.DataFrame  # final invoices only, and what void credit notes return (negative)
    rule_log: pl.DataFrame


def billing_month(issue_date: pl.Expr) -> pl.Expr:
    return issue_date.dt.truncate("1mo")


def invoices_due(catalog: Catalog, span: BillingRange, cycles: pl.DataFrame, accounts: pl.DataFrame,
                 stored: pl.DataFrame, voids: pl.DataFrame, late_chains: pl.DataFrame | None) -> pl.LazyFrame:
    """The invoices issued in the range that are not final yet, and the corrections of the run.

    A cycle invoice for every closed cycle; an opening invoice on the assignment's start date for
    cycle 0 of a plan with in-advance fees. Each carries the facts of the cycles its fees pay for:
    its own (arrears_*) and, for in-advance fees, the next cycle of the assignment (advance_*).
    cycles: every cycle (marts.fct_billing_cycles); accounts: account_id, customer_id, tax_rate;
    stored: billing.invoices (invoice_id, status, ...). When the run issues corrections: voids
    (invoice_id, invoice_number, reason, chain_id) add the invoices issued in place of voided
    ones, late_chains (chain_id, invoice_id: the chains to re-rate for late events; None with
    `late_events: ignore`) their restatements (restates_invoice_id set).
    """
    candidates = _invoice_candidates(catalog, span, cycles, accounts)
    finals = stored.filter(pl.col("status") == "final").select("invoice_id")
    due = with_correction_columns(
        candidates.filter(pl.col("billing_month").is_between(span.first_month, span.last_month))
        .join(finals.lazy(), on="invoice_id", how="anti"))
    if not span.issues_corrections:
        return due
    corrections = [reissues_due(candidates, voids, span.as_of)]
    if late_chains is not None:
        corrections.append(restatements_due(candidates, late_chains, voids, span.as_of))
    return pl.concat([due, *[frame.select(due.collect_schema().names()) for frame in corrections]], how="vertical")


def _invoice_candidates(catalog: Catalog, span: BillingRange, cycles: pl.DataFrame,
                        accounts: pl.DataFrame) -> pl.LazyFrame:
    """Every invoice the cycles can have, in any billing month, final or not, with their facts."""
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
    digits = {name: minor_unit_digits(plan.currency) for name, plan in catalog.price_plans.items()}
    # an opening invoice pays for nothing in arrears: its arrears_* columns are null
    return (pl.concat([cycle_invoices, openings], how="diagonal")
            .with_columns(billing_month(pl.col("issue_date")).alias("billing_month"))
            .with_columns(
                pl.concat_str(pl.col("account_id"), pl.lit("/"), pl.col("period_start_date").dt.strftime("%Y-%m-%d"),
                              pl.lit("_"), pl.col("kind")).alias("invoice_id"),
                pl.col("price_plan").replace_strict(digits, return_dtype=pl.Int32).alias("currency_digits"))
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
          current_batch: int | None, history: InvoiceHistory | None = None) -> BillingResult:
    """Assemble and finalize the invoices due from their rated lines, and the notes, with their JSON documents.

    usage: cycle_id, meter_name, quantity, event_count (rule variables); accounts: every column of
    accounts.csv as text; current_batch: the latest event load batch, which a newly final invoice
    has seen (later batches' events for its cycle are late); stored: billing.invoices (kind,
    status, numbering_period, invoice_sequence); history: the final documents the run corrects
    (voids to carry out, the chains restated for late events).
    """
    history = history or no_history()
    due_rows = due.collect()
    is_restatement = pl.col("restates_invoice_id").is_not_null()
    restated, invoices = due_rows.filter(is_restatement), due_rows.filter(~is_restatement)
    restated_ids = restated["invoice_id"].implode()
    # a void returns what the voided invoice drew before anything of this run draws again
    voids = void_credit_notes(history, span.as_of)
    ledgers = Ledgers(
        grants=ledgers.grants,
        credits_drawn=pl.concat([ledgers.credits_drawn.select("grant_id", pl.col("amount").cast(WORK)),
                                 voids.credit_draws.select("grant_id", "amount")]),
        topups=ledgers.topups,
        wallet_drawn=pl.concat([ledgers.wallet_drawn.select("account_id", pl.col("amount").cast(WORK)),
                                voids.wallet_draws.select("account_id", "amount")]))
    usage_by_invoice = usage.join(due_rows.select("invoice_id", "cycle_id"), on="cycle_id", how="inner")
    assembled = assemble(invoices, lines.filter(~pl.col("invoice_id").is_in(restated_ids)), usage_by_invoice,
                         accounts, ledgers, catalog)
    headers = finalize(assembled.headers, span.as_of, catalog.billing.invoice_numbering,
                       last_sequences(stored, "invoice"))
    headers = headers.with_columns(
        pl.when(pl.col("status") == "final").then(pl.lit(current_batch, dtype=pl.Int32))
        .alias("finalized_after_batch"),
        pl.when(pl.col("status") == "final").then(pl.lit(catalog.billing.invoice_numbering.prefix))
        .alias("numbering_prefix"),
        pl.lit(span.as_of).alias("computed_as_of"))
    notes = voids
    if restated.height:
        # a restatement is assembled like an invoice (rules, commitment), without credits: notes draw none
        restatements = assemble(restated, lines.filter(pl.col("invoice_id").is_in(restated_ids)), usage_by_invoice,
                                accounts, _NOTHING_DRAWN, catalog)
        notes = combined(voids, late_event_notes(catalog.billing, restated, restatements.lines, history, span.as_of))
    notes = number_notes(notes, catalog.billing, stored, span.as_of, current_batch)
    # each line's breakdown as JSON once: the warehouse keeps it, the documents are built from it
    lines = pl.concat([assembled.lines.with_columns(details_json(pl.col("details")).alias("details_json"))
                       .drop("details"), notes.lines], how="diagonal_relaxed")
    headers = pl.concat([headers, notes.headers], how="diagonal_relaxed")
    charges = pl.concat([assembled.charges, notes.charges], how="diagonal_relaxed")
    credit_draws = pl.concat([assembled.credit_draws, notes.credit_draws], how="diagonal_relaxed")
    headers, lines = with_documents(headers, lines, charges, credit_draws, customers, DocumentSettings(
        catalog.billing.issuer, catalog.billing.payment_terms_days, _units(catalog)))
    finals = headers.filter((pl.col("status") == "final") & ~pl.col("kind").is_in(NOTE_KINDS))
    wallet_draws = pl.concat([finals.filter(pl.col("wallet_applied_amount") > 0).select(
        "invoice_id", "account_id", pl.col("issue_date").alias("draw_date"),
        pl.col("wallet_applied_amount").alias("amount")), notes.wallet_draws], how="diagonal_relaxed")
    return BillingResult(invoices=headers, lines=lines, charges=charges, credit_draws=credit_draws,
                         wallet_draws=wallet_draws, rule_log=assembled.rule_log)


_NOTHING_DRAWN = Ledgers(
    grants=pl.DataFrame(schema={"grant_id": pl.String, "account_id": pl.String, "amount": WORK, "applies_to": pl.String,
                                "granted_date": pl.Date, "expiry_date": pl.Date, "priority": pl.Int32}),
    credits_drawn=pl.DataFrame(schema={"grant_id": pl.String, "amount": WORK}),
    topups=pl.DataFrame(schema={"account_id": pl.String, "amount": WORK, "topup_date": pl.Date}),
    wallet_drawn=pl.DataFrame(schema={"account_id": pl.String, "amount": WORK}))


def _units(catalog: Catalog) -> dict[str, str]:
    """The unit of each usage item's quantity: that of the event attribute its meter measures
    (calls, GB, tokens); a meter that counts events has none."""
    units = {}
    for item in catalog.billable_items.values():
        meter = catalog.usage_meters.get(item.usage_meter or "")
        if meter is None or meter.attribute is None:
            continue
        attribute = next(a for a in catalog.event_schemas[meter.event_schema].attributes if a.name == meter.attribute)
        if attribute.unit:
            units[item.name] = attribute.unit
    return units
