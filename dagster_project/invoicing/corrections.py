"""Corrections of final invoices: credit and debit notes, and voids.

A final invoice never changes. What a customer owes for a billed cycle is corrected by documents
of their own, final at once, each kind of note numbered in its own series:

- Late events (`late_events: adjust`): the cycle's current invoice is re-rated on all of the
  cycle's events, the late ones included ("restated"), and the difference against everything
  already billed for it (its invoices and debit notes, less its credit notes) becomes a debit
  note (more to pay) or a credit note (less): one line per item whose quantity or amount changed,
  the custom charges on the difference. Notes are settled outside credits and wallet.
- A void (`tally void`): a credit note for everything billed on the voided invoice (its lines
  and charges, with the late-event notes that adjusted it), which returns the credits and wallet
  money the invoice drew; the invoice issued in its place is rated like any other (billing.py).

A note's amounts are positive in its own direction: a credit note of 15.00 gives 15.00 back.

Every document billing one invoice of a cycle forms a chain: the first invoice, the invoices
issued in place of voided ones, and the notes of them all. A chain's id is its first invoice's id,
<account_id>/<period_start>_<kind>.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from dagster_project.catalog.models import BillingSettings
from dagster_project.invoicing.assembly import SECTIONS, custom_charges
from dagster_project.invoicing.credits import DRAW_SCHEMA
from dagster_project.invoicing.documents import decimal_text
from dagster_project.invoicing.finalization import finalize, last_sequences
from dagster_project.invoicing.kinds import NOTE_KINDS
from dagster_project.money import WORK, minor_unit_digits, zero

RESTATED = "#restated"  # the id suffix of a chain re-rated for late events (never an invoice)

# columns a due invoice carries for corrections (null on ordinary invoices)
DUE_CORRECTION_COLUMNS = {"restates_invoice_id": pl.String, "replaces_invoice_id": pl.String,
                          "replaces_invoice_number": pl.String, "adjustment_cause": pl.String,
                          "adjustment_reason": pl.String}
LINE_SCHEMA = {"invoice_id": pl.String, "line_number": pl.Int32, "line_type": pl.String, "billable_item": pl.String,
               "description": pl.String, "quantity": WORK, "amount": WORK, "details_json": pl.String}
CHARGE_SCHEMA = {"invoice_id": pl.String, "charge_number": pl.Int32, "charge_name": pl.String, "rate": WORK,
                 "amount": WORK}
WALLET_DRAW_SCHEMA = {"invoice_id": pl.String, "account_id": pl.String, "draw_date": pl.Date, "amount": WORK}
_MONEY = ("subtotal_amount", "credits_applied_amount", "custom_charges_amount", "total_amount",
          "wallet_applied_amount", "amount_due_amount")


@dataclass(frozen=True)
class InvoiceHistory:
    """The committed final documents a run corrects."""

    voids: pl.DataFrame         # invoice_id, invoice_number, reason: the voids to carry out
    documents: pl.DataFrame     # billing.invoices rows (without their texts) of the chains concerned, with chain_id
    lines: pl.DataFrame         # their lines (LINE_SCHEMA)
    charges: pl.DataFrame       # their custom charges (CHARGE_SCHEMA)
    credit_draws: pl.DataFrame  # their credit draws (DRAW_SCHEMA)


@dataclass(frozen=True)
class Notes:
    headers: pl.DataFrame       # billing.invoices columns, with currency_digits and adjusts_invoice_number
    lines: pl.DataFrame         # LINE_SCHEMA
    charges: pl.DataFrame       # CHARGE_SCHEMA
    credit_draws: pl.DataFrame  # DRAW_SCHEMA: negative, the credit a void returns
    wallet_draws: pl.DataFrame  # WALLET_DRAW_SCHEMA: negative, the wallet money a void returns


def no_history() -> InvoiceHistory:
    return InvoiceHistory(
        voids=pl.DataFrame(schema={"invoice_id": pl.String, "invoice_number": pl.String, "reason": pl.String}),
        documents=pl.DataFrame(schema={"invoice_id": pl.String, "chain_id": pl.String, "kind": pl.String,
                                       "invoice_number": pl.String, "adjusts_invoice_id": pl.String,
                                       "adjustment_cause": pl.String}),
        lines=pl.DataFrame(schema=LINE_SCHEMA), charges=pl.DataFrame(schema=CHARGE_SCHEMA),
        credit_draws=pl.DataFrame(schema=DRAW_SCHEMA))


def chain_id(kind: pl.Expr) -> pl.Expr:
    """<account_id>/<period_start>_<kind>: the id of a chain's first invoice."""
    return pl.concat_str(pl.col("account_id"), pl.lit("/"), pl.col("period_start_date").dt.strftime("%Y-%m-%d"),
                         pl.lit("_"), kind)


def with_correction_columns(due: pl.LazyFrame) -> pl.LazyFrame:
    return due.with_columns(pl.lit(None, dtype=dtype).alias(name) for name, dtype in DUE_CORRECTION_COLUMNS.items())


def reissues_due(candidates: pl.LazyFrame, voids: pl.DataFrame, as_of: date) -> pl.LazyFrame:
    """The invoices issued in place of voided ones, on the run's date, with their cycle's facts.

    candidates: every invoice a cycle can have, with its facts, keyed by its chain id (invoice_id);
    voids: invoice_id, invoice_number, reason, chain_id."""
    requests = voids.lazy().select(
        pl.col("chain_id").alias("invoice_id"), pl.col("invoice_id").alias("replaces_invoice_id"),
        pl.col("invoice_number").alias("replaces_invoice_number"), pl.col("reason").alias("adjustment_reason"))
    return (candidates.join(requests, on="invoice_id", how="inner")
            .with_columns(pl.concat_str(pl.col("invoice_id"), pl.lit("_replaces_"), pl.col("replaces_invoice_number"))
                          .alias("invoice_id"),
                          pl.lit(as_of).alias("issue_date"), pl.lit(as_of.replace(day=1)).alias("billing_month"),
                          pl.lit(None, dtype=pl.String).alias("restates_invoice_id"),
                          pl.lit("void").alias("adjustment_cause")))


def restatements_due(candidates: pl.LazyFrame, targets: pl.DataFrame, voids: pl.DataFrame, as_of: date) -> pl.LazyFrame:
    """The chains to re-rate for late events, as invoices issued on the run's date; only their lines
    are used (compared with what was billed). A chain being voided is not: its new invoice is rated
    on all events anyway.

    targets: chain_id, invoice_id (the chain's current invoice)."""
    chains = (targets.lazy().join(voids.lazy().select("chain_id"), on="chain_id", how="anti")
              .select(pl.col("chain_id").alias("invoice_id"), pl.col("invoice_id").alias("restates_invoice_id")))
    return (candidates.join(chains, on="invoice_id", how="inner")
            .with_columns((pl.col("restates_invoice_id") + pl.lit(RESTATED)).alias("invoice_id"),
                          pl.lit(as_of).alias("issue_date"), pl.lit(as_of.replace(day=1)).alias("billing_month"),
                          *[pl.lit(None, dtype=dtype).alias(name) for name, dtype in DUE_CORRECTION_COLUMNS.items()
                            if name != "restates_invoice_id"]))


def _line_key() -> pl.Expr:
    """Lines of one item correspond across a chain's documents; rule and true-up lines by their text."""
    return pl.concat_str(pl.col("line_type"), pl.lit("|"), pl.coalesce(pl.col("billable_item"), pl.col("description")))


def _signed(documents: pl.DataFrame) -> pl.DataFrame:
    """invoice_id, chain_id, sign: +1 for invoices and debit notes, -1 for credit notes (as billed)."""
    return documents.select("invoice_id", "chain_id",
                            pl.when(pl.col("kind") == "credit_note").then(-1).otherwise(1).alias("sign"))


def _net_quantity() -> pl.Expr:
    """Sum of signed quantities; null when no line has one (rule and true-up lines)."""
    return (pl.when(pl.col("quantity").is_not_null().any())
            .then((pl.col("quantity").cast(WORK) * pl.col("sign")).sum()))


def late_event_notes(settings: BillingSettings, restated: pl.DataFrame, restated_lines: pl.DataFrame,
                     history: InvoiceHistory, as_of: date) -> Notes:
    """A debit or credit note for each restated chain whose lines differ from what was billed.

    restated: the restatement rows of the due invoices (invoice_id, restates_invoice_id, account and
    cycle facts, currency_digits, tax_rate); restated_lines: their lines after pricing rules and the
    commitment (invoice_id, line_number, line_type, billable_item, description, quantity, amount)."""
    chains = restated.select("invoice_id", "restates_invoice_id", chain_id(pl.col("kind")).alias("chain_id"))
    now = (restated_lines.join(chains, on="invoice_id", how="inner")
           .select("chain_id", "line_number", "line_type", "billable_item", "description", _line_key().alias("key"),
                   pl.col("quantity").cast(WORK), pl.col("amount").cast(WORK)))
    billed = (history.lines.join(_signed(history.documents), on="invoice_id", how="inner")
              .join(chains.select("chain_id"), on="chain_id", how="semi")
              .group_by("chain_id", _line_key().alias("key"))
              .agg(pl.col("line_type").first(), pl.col("billable_item").first(), pl.col("description").first(),
                   _net_quantity().alias("billed_quantity"),
                   (pl.col("amount").cast(WORK) * pl.col("sign")).sum().alias("billed_amount")))
    both = (now.join(billed, on=["chain_id", "key"], how="full", coalesce=True, suffix="_billed")
            .with_columns(pl.coalesce("line_type", "line_type_billed").alias("line_type"),
                          pl.coalesce("billable_item", "billable_item_billed").alias("billable_item"),
                          pl.coalesce("description", "description_billed").alias("description"),
                          pl.col("amount").fill_null(zero()).alias("restated_amount"),
                          pl.col("billed_amount").fill_null(zero()),
                          pl.col("quantity").alias("restated_quantity"))
            .with_columns((pl.col("restated_amount") - pl.col("billed_amount")).alias("amount_change"),
                          pl.when(pl.col("restated_quantity").is_null() & pl.col("billed_quantity").is_null())
                          .then(None)
                          .otherwise(pl.col("restated_quantity").fill_null(zero())
                                     - pl.col("billed_quantity").fill_null(zero())).alias("quantity_change")))
    changes = (both.group_by("chain_id").agg(pl.col("amount_change").sum().alias("subtotal_change"))
               .filter(pl.col("subtotal_change") != 0)
               .with_columns(pl.when(pl.col("subtotal_change") > 0).then(1).otherwise(-1).alias("direction")))
    if changes.is_empty():
        return _no_notes()
    numbers = history.documents.select(pl.col("invoice_id").alias("restates_invoice_id"),
                                       pl.col("invoice_number").alias("adjusts_invoice_number"))
    headers = (restated.with_columns(chain_id(pl.col("kind")).alias("chain_id"))
               .join(changes, on="chain_id", how="inner")
               .join(numbers, on="restates_invoice_id", how="left")
               .with_columns(pl.when(pl.col("direction") > 0).then(pl.lit("debit_note"))
                             .otherwise(pl.lit("credit_note")).alias("kind"),
                             pl.col("restates_invoice_id").alias("adjusts_invoice_id"),
                             pl.lit(as_of).alias("issue_date"), pl.lit("late_events").alias("adjustment_cause"),
                             pl.concat_str(pl.lit("late events: re-rated with the events loaded after "),
                                           pl.col("adjusts_invoice_number"), pl.lit(" was final"))
                             .alias("adjustment_reason"),
                             (pl.col("restates_invoice_id") + pl.lit("#late")).alias("invoice_id")))
    lines = (both.join(headers.select("chain_id", "invoice_id", "direction"), on="chain_id", how="inner")
             .filter((pl.col("amount_change") != 0) | (pl.col("quantity_change").fill_null(zero()) != 0))
             .with_columns(pl.col("line_type").replace_strict(SECTIONS, return_dtype=pl.Int32).alias("_section"))
             .sort("invoice_id", "_section", "line_number", "key", nulls_last=True)
             .with_columns((pl.int_range(pl.len()).over("invoice_id") + 1).cast(pl.Int32).alias("line_number"),
                           (pl.col("quantity_change") * pl.col("direction")).cast(WORK).alias("quantity"),
                           (pl.col("amount_change") * pl.col("direction")).cast(WORK).alias("amount"),
                           _change_details().alias("details_json"))
             .select(list(LINE_SCHEMA)))
    headers = headers.join(lines.group_by("invoice_id").agg(pl.col("amount").sum().alias("subtotal_amount")),
                           on="invoice_id").with_columns(zero().alias("credits_applied_amount"))
    charges = custom_charges(headers.lazy(), settings).collect()
    headers = (headers.join(charges.group_by("invoice_id").agg(pl.col("amount").sum().alias("custom_charges_amount")),
                            on="invoice_id", how="left")
               .with_columns(pl.col("custom_charges_amount").fill_null(zero()).cast(WORK))
               .with_columns((pl.col("subtotal_amount") + pl.col("custom_charges_amount")).alias("total_amount"),
                             zero().alias("wallet_applied_amount"))
               .with_columns(pl.col("total_amount").alias("amount_due_amount")))
    return Notes(headers=_note_headers(headers), lines=lines, charges=charges.select(list(CHARGE_SCHEMA)),
                 credit_draws=pl.DataFrame(schema=DRAW_SCHEMA), wallet_draws=pl.DataFrame(schema=WALLET_DRAW_SCHEMA))


def _change_details() -> pl.Expr:
    """What was billed and what re-rating gives, exactly: the line's breakdown on a note."""
    def shown(column: str) -> pl.Expr:
        return decimal_text(pl.col(column))

    return pl.concat_str(pl.lit('[{"kind":"adjustment","billed_quantity":'), _json_text(shown("billed_quantity")),
                         pl.lit(',"billed_amount":'), _json_text(shown("billed_amount")),
                         pl.lit(',"restated_quantity":'), _json_text(shown("restated_quantity")),
                         pl.lit(',"restated_amount":'), _json_text(shown("restated_amount")), pl.lit("}]"))


def _json_text(text: pl.Expr) -> pl.Expr:
    return pl.when(text.is_null()).then(pl.lit("null")).otherwise(pl.concat_str(pl.lit('"'), text, pl.lit('"')))


def void_credit_notes(history: InvoiceHistory, as_of: date) -> Notes:
    """For each void, a credit note for everything billed on the voided invoice: its lines and
    charges net of the late-event notes that adjusted it, and the credits and wallet money it drew,
    returned (negative draws)."""
    if history.voids.is_empty():
        return _no_notes()
    voided = (history.documents.join(history.voids.select("invoice_id", "reason"), on="invoice_id", how="inner")
              .with_columns((pl.col("invoice_id") + pl.lit("#void")).alias("note_id")))
    notes_of_voided = (history.documents.filter((pl.col("adjustment_cause") == "late_events")
                                                & pl.col("adjusts_invoice_id").is_in(voided["invoice_id"].implode()))
                       .join(voided.select(pl.col("invoice_id").alias("adjusts_invoice_id"), "note_id"),
                             on="adjusts_invoice_id")
                       .select("invoice_id", "note_id", pl.when(pl.col("kind") == "credit_note").then(-1)
                               .otherwise(1).alias("sign"), pl.lit(False).alias("is_voided")))
    members = pl.concat([voided.select("invoice_id", "note_id", pl.lit(1).alias("sign"),
                                       pl.lit(True).alias("is_voided")), notes_of_voided], how="vertical_relaxed")
    # the voided invoice's own lines first: theirs are the text, breakdown and place a line keeps
    lines = (history.lines.join(members, on="invoice_id", how="inner")
             .with_columns(_line_key().alias("key"),
                           pl.when(pl.col("is_voided")).then(pl.col("line_number"))
                           .otherwise(pl.col("line_number") + 100_000).alias("_place"))
             .sort("note_id", "key", "_place")
             .group_by("note_id", "key", maintain_order=True)
             .agg(pl.col("_place").first(), pl.col("line_type").first(), pl.col("billable_item").first(),
                  pl.col("description").first(), pl.col("details_json").first(), _net_quantity().alias("quantity"),
                  (pl.col("amount").cast(WORK) * pl.col("sign")).sum().alias("amount"))
             .sort("note_id", "_place")
             .with_columns((pl.int_range(pl.len()).over("note_id") + 1).cast(pl.Int32).alias("line_number"))
             .select(pl.col("note_id").alias("invoice_id"), *list(LINE_SCHEMA)[1:]))
    charges = (history.charges.join(members, on="invoice_id", how="inner")
               .sort("note_id", "charge_number", pl.col("is_voided").not_())
               .group_by("note_id", "charge_number", maintain_order=True)
               .agg(pl.col("charge_name").first(), pl.col("rate").first(),
                    (pl.col("amount").cast(WORK) * pl.col("sign")).sum().alias("amount"))
               .select(pl.col("note_id").alias("invoice_id"), *list(CHARGE_SCHEMA)[1:]))
    sums = (lines.group_by("invoice_id").agg(pl.col("amount").sum().alias("subtotal_amount"))
            .join(charges.group_by("invoice_id").agg(pl.col("amount").sum().alias("custom_charges_amount")),
                  on="invoice_id", how="full", coalesce=True))
    headers = (voided.with_columns(pl.lit("credit_note").alias("kind"), pl.lit(as_of).alias("issue_date"),
                                   pl.col("invoice_id").alias("adjusts_invoice_id"),
                                   pl.col("invoice_number").alias("adjusts_invoice_number"),
                                   pl.lit("void").alias("adjustment_cause"),
                                   pl.col("reason").alias("adjustment_reason"),
                                   pl.col("credits_applied_amount").cast(WORK),
                                   pl.col("wallet_applied_amount").cast(WORK))
               .drop("invoice_id", "subtotal_amount", "custom_charges_amount")
               .rename({"note_id": "invoice_id"})
               .join(sums, on="invoice_id", how="left")
               .with_columns(pl.col("subtotal_amount").fill_null(zero()).cast(WORK),
                             pl.col("custom_charges_amount").fill_null(zero()).cast(WORK))
               .with_columns((pl.col("subtotal_amount") - pl.col("credits_applied_amount")
                              + pl.col("custom_charges_amount")).alias("total_amount"))
               .with_columns((pl.col("total_amount") - pl.col("wallet_applied_amount")).alias("amount_due_amount"),
                             pl.col("currency").replace_strict(
                                 {code: minor_unit_digits(code) for code in voided["currency"].unique()},
                                 return_dtype=pl.Int32).alias("currency_digits")))
    credit_draws = (history.credit_draws.join(voided.select("invoice_id", "note_id"), on="invoice_id", how="inner")
                    .select(pl.col("note_id").alias("invoice_id"), "account_id", "grant_id", "draw_number",
                            (-pl.col("amount").cast(WORK)).alias("amount")))
    wallet_draws = (headers.filter(pl.col("wallet_applied_amount") > 0)
                    .select("invoice_id", "account_id", pl.lit(as_of).alias("draw_date"),
                            (-pl.col("wallet_applied_amount")).alias("amount")))
    return Notes(headers=_note_headers(headers), lines=lines, charges=charges, credit_draws=credit_draws,
                 wallet_draws=wallet_draws)


def _note_headers(headers: pl.DataFrame) -> pl.DataFrame:
    return headers.select(
        "invoice_id", "account_id", "customer_id", "price_plan", "kind", "cycle_id", "cycle_index",
        "period_start_date", "period_end_date", "issue_date",
        pl.col("issue_date").dt.truncate("1mo").alias("billing_month"), "currency",
        pl.col("currency_digits").cast(pl.Int32), *[pl.col(name).cast(WORK) for name in _MONEY],
        "adjusts_invoice_id", "adjusts_invoice_number", "adjustment_cause", "adjustment_reason")


def _no_notes() -> Notes:
    headers = pl.DataFrame(schema={
        "invoice_id": pl.String, "account_id": pl.String, "customer_id": pl.String, "price_plan": pl.String,
        "kind": pl.String, "cycle_id": pl.String, "cycle_index": pl.Int32, "period_start_date": pl.Date,
        "period_end_date": pl.Date, "issue_date": pl.Date, "billing_month": pl.Date, "currency": pl.String,
        "currency_digits": pl.Int32, **{name: WORK for name in _MONEY}, "adjusts_invoice_id": pl.String,
        "adjusts_invoice_number": pl.String, "adjustment_cause": pl.String, "adjustment_reason": pl.String})
    return Notes(headers=headers, lines=pl.DataFrame(schema=LINE_SCHEMA), charges=pl.DataFrame(schema=CHARGE_SCHEMA),
                 credit_draws=pl.DataFrame(schema=DRAW_SCHEMA), wallet_draws=pl.DataFrame(schema=WALLET_DRAW_SCHEMA))


def combined(*notes: Notes) -> Notes:
    return Notes(*(pl.concat([getattr(n, field) for n in notes], how="diagonal_relaxed")
                   for field in ("headers", "lines", "charges", "credit_draws", "wallet_draws")))


def number_notes(notes: Notes, settings: BillingSettings, stored: pl.DataFrame, as_of: date,
                 current_batch: int | None) -> Notes:
    """Numbers for the notes, each kind in its own series, and their ids:
    <account_id>/<period_start>_<kind>_<number>, which no invoice and no other note can have."""
    if notes.headers.is_empty():
        return notes
    numbered = []
    for kind in NOTE_KINDS:
        of_kind = notes.headers.filter(pl.col("kind") == kind)
        if of_kind.height:
            numbering = settings.numbering_of(kind)
            numbered.append(finalize(of_kind, as_of, numbering, last_sequences(stored, kind))
                            .with_columns(pl.lit(numbering.prefix).alias("numbering_prefix")))
    headers = pl.concat(numbered).with_columns(
        chain_id(pl.concat_str(pl.col("kind"), pl.lit("_"), pl.col("invoice_number"))).alias("_final_id"),
        pl.lit(current_batch, dtype=pl.Int32).alias("finalized_after_batch"), pl.lit(as_of).alias("computed_as_of"))
    final_ids = dict(headers.select("invoice_id", "_final_id").iter_rows())

    def renamed(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col("invoice_id").replace_strict(final_ids, return_dtype=pl.String))

    return Notes(headers=renamed(headers).drop("_final_id"), lines=renamed(notes.lines),
                 charges=renamed(notes.charges), credit_draws=renamed(notes.credit_draws),
                 wallet_draws=renamed(notes.wallet_draws))

