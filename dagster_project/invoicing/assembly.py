"""Invoice assembly (README): lines -> subtotal -> credits -> custom charges -> total -> wallet.

Pure functions over Polars frames: every invoice of a billing run is assembled at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dagster_project.catalog import Catalog
from dagster_project.catalog.models import BillingSettings
from dagster_project.invoicing.adjustments import adjust
from dagster_project.invoicing.credits import draw_credits, draw_wallet
from dagster_project.money import WORK, round_money, zero

# Invoice sections in the order of the README's Concepts; a line's number follows (section, position in its section).
SECTIONS = {"usage": 0, "named_license": 0, "license": 1, "fixed_fee": 2, "pricing_rule": 3,
            "commitment_true_up": 4}


@dataclass(frozen=True)
class Ledgers:
    """What credits and wallets hold before the invoices being computed draw on them."""

    grants: pl.DataFrame          # marts.dim_credit_grants
    credits_drawn: pl.DataFrame   # grant_id, amount: draws of invoices not being recomputed
    topups: pl.DataFrame          # account_id, amount, topup_date
    wallet_drawn: pl.DataFrame    # account_id, amount: draws of final invoices


@dataclass(frozen=True)
class AssembledInvoices:
    headers: pl.DataFrame        # one row per invoice, with every total
    lines: pl.DataFrame          # invoice_id, line_number, line_type, billable_item, description, quantity,
    #                              amount, details
    charges: pl.DataFrame        # invoice_id, charge_number, charge_name, rate, amount
    credit_draws: pl.DataFrame   # invoice_id, account_id, grant_id, draw_number, amount
    rule_log: pl.DataFrame       # one row per pricing rule evaluation


def number_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Line numbers 1..n per invoice, in section order, then rate-card position."""
    return (lines.with_columns(pl.col("line_type").replace_strict(SECTIONS, return_dtype=pl.Int32).alias("section"))
            .sort("invoice_id", "section", "line_position")
            .with_columns((pl.int_range(pl.len()).over("invoice_id") + 1).cast(pl.Int32).alias("line_number"))
            .drop("section", "line_position"))


def assemble(invoices: pl.DataFrame, lines: pl.DataFrame, usage: pl.DataFrame, accounts: pl.DataFrame,
             ledgers: Ledgers, catalog: Catalog) -> AssembledInvoices:
    """Every total of every invoice, in the README's order.

    invoices: the invoices due (invoice_id, account_id, kind, price_plan, issue_date, period dates,
    currency_digits, tax_rate, ...); lines: their rated rate-card lines; usage: invoice_id,
    meter_name, quantity, event_count; accounts: accounts.csv columns as text (rule variables).
    """
    adjusted = adjust(catalog, invoices, lines, usage, accounts)
    numbered = number_lines(adjusted.lines.lazy()).collect()
    headers = _with_sum(invoices, numbered, "amount", "subtotal_amount")
    credits = draw_credits(headers, numbered, ledgers.grants, ledgers.credits_drawn)
    headers = _with_sum(headers, credits.draws, "amount", "credits_applied_amount")
    charges = custom_charges(headers.lazy(), catalog.billing).collect()
    headers = (_with_sum(headers, charges, "amount", "custom_charges_amount")
               .with_columns((pl.col("subtotal_amount") - pl.col("credits_applied_amount")
                              + pl.col("custom_charges_amount")).alias("total_amount")))
    wallet = draw_wallet(headers, ledgers.topups, ledgers.wallet_drawn)
    headers = (_with_sum(headers, wallet, "wallet_applied_amount", "wallet_applied_amount")
               .with_columns((pl.col("total_amount") - pl.col("wallet_applied_amount")).alias("amount_due_amount")))
    return AssembledInvoices(headers=headers, lines=numbered, charges=charges, credit_draws=credits.draws,
                             rule_log=adjusted.log)


def _with_sum(headers: pl.DataFrame, rows: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """headers with `name`: the sum of rows[column] per invoice, 0 for an invoice without rows."""
    sums = rows.group_by("invoice_id").agg(pl.col(column).sum().alias(name))
    return (headers.join(sums, on="invoice_id", how="left")
            .with_columns(pl.col(name).fill_null(zero()).cast(WORK)))


def custom_charges(headers: pl.LazyFrame, settings: BillingSettings) -> pl.LazyFrame:
    """Each configured charge on (subtotal - credits), rounded per charge.

    An account's tax_rate replaces the rate of the first percentage charge (the tax); the others
    keep their configured rates.
    """
    rows = [{"charge_number": n, "charge_name": c.name, "configured_rate": c.rate,
             "is_tax": n == 1} for n, c in enumerate(settings.custom_charges, start=1)]
    configured = pl.LazyFrame(rows, schema={"charge_number": pl.Int32, "charge_name": pl.String,
                                            "configured_rate": WORK, "is_tax": pl.Boolean})
    rate = pl.when(pl.col("is_tax") & pl.col("tax_rate").is_not_null()).then(pl.col("tax_rate")) \
        .otherwise(pl.col("configured_rate"))
    base = pl.col("subtotal_amount") - pl.col("credits_applied_amount")
    return (headers.select("invoice_id", "currency_digits", "tax_rate", "subtotal_amount", "credits_applied_amount")
            .join(configured, how="cross")
            .with_columns(rate.cast(WORK).alias("rate"))
            .with_columns(round_money(base * pl.col("rate"), pl.col("currency_digits"), settings.rounding)
                          .alias("amount"))
            .select("invoice_id", "charge_number", "charge_name", "rate", "amount"))
