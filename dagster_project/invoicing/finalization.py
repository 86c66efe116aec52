"""Draft or final (README), and gapless invoice numbers for the invoices that become final.

An invoice is final once the run's date reaches its issue date (cycle end + grace period; the
assignment start for an opening invoice). Numbers continue each numbering period's sequence from
the last final invoice, in (issue date, account id, kind, invoice id) order, opening before
cycle. Credit notes and debit notes are numbered the same way, each kind in a series of its own.
"""
from __future__ import annotations

from datetime import date

import polars as pl

from dagster_project.catalog.models import InvoiceNumbering
from dagster_project.invoicing.kinds import KIND_ORDER, NOTE_KINDS


def numbering_period(issue_date: pl.Expr, reset: str) -> pl.Expr:
    if reset == "yearly":
        return issue_date.dt.strftime("%Y")
    if reset == "monthly":
        return issue_date.dt.strftime("%Y-%m")
    return pl.lit("")


def series_of(kind: pl.Expr) -> pl.Expr:
    """The numbering series of each row's kind: invoices (opening and cycle) share one, each note kind has its own."""
    return pl.when(kind.is_in(NOTE_KINDS)).then(kind).otherwise(pl.lit("invoice"))


def last_sequences(stored: pl.DataFrame, series: str) -> pl.DataFrame:
    """numbering_period, last_sequence: the highest number given in each period of a series.

    stored: billing.invoices rows (kind, status, numbering_period, invoice_sequence)."""
    return (stored.lazy().filter((pl.col("status") == "final") & (series_of(pl.col("kind")) == series))
            .group_by("numbering_period").agg(pl.col("invoice_sequence").max().alias("last_sequence"))
            .collect())


def finalize(headers: pl.DataFrame, as_of: date, numbering: InvoiceNumbering,
             last_sequences: pl.DataFrame) -> pl.DataFrame:
    """Add status, numbering_period, invoice_sequence and invoice_number.

    last_sequences: numbering_period, last_sequence (the highest number already given).
    """
    period = numbering_period(pl.col("issue_date"), numbering.reset)
    is_final = pl.col("issue_date") <= pl.lit(as_of)
    ranked = (headers
              .with_columns(pl.when(is_final).then(pl.lit("final")).otherwise(pl.lit("draft")).alias("status"),
                            pl.when(is_final).then(period).alias("numbering_period"),
                            pl.col("kind").replace_strict(KIND_ORDER, return_dtype=pl.Int8).alias("_kind_order"))
              .join(last_sequences, on="numbering_period", how="left")
              .with_columns(
                  pl.when(pl.col("status") == "final").then(
                      pl.col("last_sequence").fill_null(0)
                      + pl.struct("issue_date", "account_id", "_kind_order", "invoice_id")
                      .rank(method="ordinal").over("numbering_period"))
                  .cast(pl.Int32).alias("invoice_sequence")))
    separator = pl.when(pl.col("numbering_period") == "").then(pl.lit("")).otherwise(
        pl.col("numbering_period") + pl.lit("-"))
    number = pl.concat_str(pl.lit(f"{numbering.prefix}-"), separator,
                           pl.col("invoice_sequence").cast(pl.String).str.zfill(numbering.padding))
    return (ranked.with_columns(pl.when(pl.col("status") == "final").then(number).alias("invoice_number"))
            .drop("_kind_order", "last_sequence"))
