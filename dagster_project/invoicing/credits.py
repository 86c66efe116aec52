"""Credits and wallets (README): drawn invoice by invoice in issue order, every account at once.

Drawing is sequential within an account (a grant's balance after one invoice is what the next
can use), so the loops run over the k-th invoice of every account and, within it, the j-th grant
it draws: each step is one Polars operation over all accounts. Money only moves: a draw never
exceeds the grant's balance, what remains of the lines the grant applies to, nor what remains of
the invoice.
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dagster_project.invoicing.kinds import KIND_ORDER
from dagster_project.money import WORK, clamp_high, clamp_low, zero

DRAW_SCHEMA = {"invoice_id": pl.String, "account_id": pl.String, "grant_id": pl.String, "draw_number": pl.Int32,
               "amount": WORK}


@dataclass(frozen=True)
class CreditDraws:
    draws: pl.DataFrame            # DRAW_SCHEMA: one row per (invoice, grant) that paid something
    lines_remaining: pl.DataFrame  # invoice_id, line_number, remaining (after credits)


def in_issue_order(invoices: pl.DataFrame) -> pl.DataFrame:
    """Invoices with `_rank`, their place among their account's invoices: issue date, then kind
    (opening first), then invoice id (README)."""
    return (invoices.with_columns(pl.col("kind").replace_strict(KIND_ORDER, return_dtype=pl.Int8).alias("_kind"))
            .sort("account_id", "issue_date", "_kind", "invoice_id")
            .with_columns(pl.int_range(pl.len()).over("account_id").alias("_rank"))
            .drop("_kind"))


def draw_credits(invoices: pl.DataFrame, lines: pl.DataFrame, grants: pl.DataFrame,
                 already_drawn: pl.DataFrame) -> CreditDraws:
    """invoices: invoice_id, account_id, kind, issue_date, period_end_date; lines: invoice_id,
    line_number, billable_item, amount; grants: grant_id, account_id, amount, applies_to ('all' or
    items joined by ';'), granted_date, expiry_date, priority; already_drawn: grant_id, amount
    drawn by invoices not in this computation (final ones, and drafts issued earlier)."""
    balances = (grants.join(already_drawn.group_by("grant_id").agg(pl.col("amount").sum().alias("_drawn")),
                            on="grant_id", how="left")
                .select("grant_id", "account_id", "granted_date", "expiry_date", "priority",
                        pl.when(pl.col("applies_to") == "all").then(None)
                        .otherwise(pl.col("applies_to").str.split(";").list.eval(pl.element().str.strip_chars()))
                        .alias("items"),
                        (pl.col("amount").cast(WORK) - pl.col("_drawn").fill_null(zero())).alias("balance")))
    ordered = in_issue_order(invoices)
    remaining = lines.select("invoice_id", "line_number", "billable_item", pl.col("amount").alias("remaining"))
    draws = [pl.DataFrame(schema=DRAW_SCHEMA)]
    settled = []
    for rank in range(ordered["_rank"].max() + 1 if ordered.height else 0):
        batch = ordered.filter(pl.col("_rank") == rank).select("invoice_id", "account_id", "period_end_date")
        batch_lines = remaining.join(batch.select("invoice_id"), on="invoice_id", how="semi")
        usable = (batch.join(balances, on="account_id", how="inner")
                  .filter((pl.col("granted_date") < pl.col("period_end_date"))
                          & (pl.col("expiry_date").is_null() | (pl.col("period_end_date") <= pl.col("expiry_date")))
                          & (pl.col("balance") > 0))
                  .sort("invoice_id", "priority", pl.col("expiry_date"), "granted_date", "grant_id",
                        nulls_last=True)
                  .with_columns(pl.int_range(pl.len()).over("invoice_id").alias("_order")))
        batch_draws = []
        for order in range(usable["_order"].max() + 1 if usable.height else 0):
            grant = usable.filter(pl.col("_order") == order)
            drawn, batch_lines = _draw_one(grant, batch_lines)
            batch_draws.append(drawn.with_columns(pl.lit(order + 1, dtype=pl.Int32).alias("draw_number")))
        if batch_draws:
            made = pl.concat(batch_draws).filter(pl.col("amount") > 0)
            draws.append(made.select(list(DRAW_SCHEMA)))
            spent = made.group_by("grant_id").agg(pl.col("amount").sum().alias("_spent"))
            balances = (balances.join(spent, on="grant_id", how="left")
                        .with_columns((pl.col("balance") - pl.col("_spent").fill_null(zero())).alias("balance"))
                        .drop("_spent"))
        settled.append(batch_lines)
        remaining = remaining.join(batch.select("invoice_id"), on="invoice_id", how="anti")
    lines_remaining = pl.concat([remaining, *settled], how="vertical") if settled else remaining
    return CreditDraws(draws=pl.concat(draws, how="vertical"),
                       lines_remaining=lines_remaining.select("invoice_id", "line_number", "remaining"))


def _draw_one(grant: pl.DataFrame, lines: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One grant per invoice pays what it can; the draw is spread over its lines in line order."""
    applicable = (lines.join(grant.select("invoice_id", "items"), on="invoice_id", how="inner")
                  .filter(pl.col("items").is_null() | pl.col("items").list.contains(pl.col("billable_item")))
                  .with_columns(clamp_low(pl.col("remaining"), zero()).alias("_open"))
                  .sort("invoice_id", "line_number"))
    open_by_invoice = applicable.group_by("invoice_id").agg(pl.col("_open").sum().alias("_applicable"))
    invoice_left = lines.group_by("invoice_id").agg(pl.col("remaining").sum().alias("_invoice_left"))
    drawn = (grant.join(open_by_invoice, on="invoice_id", how="left")
             .join(invoice_left, on="invoice_id", how="left")
             .with_columns(clamp_low(pl.min_horizontal(pl.col("balance"), pl.col("_applicable").fill_null(zero()),
                                                       pl.col("_invoice_left").fill_null(zero())), zero())
                           .alias("amount"))
             .select("invoice_id", "account_id", "grant_id", "amount"))
    spread = (applicable.join(drawn.select("invoice_id", pl.col("amount").alias("_draw")), on="invoice_id")
              .with_columns((pl.col("_open").cum_sum().over("invoice_id") - pl.col("_open")).alias("_before"))
              .with_columns(clamp_high(clamp_low(pl.col("_draw") - pl.col("_before"), zero()), pl.col("_open"))
                            .alias("_paid"))
              .select("invoice_id", "line_number", "_paid"))
    lines = (lines.join(spread, on=["invoice_id", "line_number"], how="left")
             .with_columns((pl.col("remaining") - pl.col("_paid").fill_null(zero())).alias("remaining"))
             .drop("_paid"))
    return drawn, lines


def draw_wallet(invoices: pl.DataFrame, topups: pl.DataFrame, already_drawn: pl.DataFrame) -> pl.DataFrame:
    """The wallet amount each invoice takes: min(balance on its issue date, total), in issue order.

    invoices: invoice_id, account_id, kind, issue_date, total_amount; topups: account_id, amount,
    topup_date; already_drawn: account_id, amount (draws of final invoices not in this computation).
    Drafts are given what would apply, after the invoices before them, and draw nothing (the
    caller records only final invoices' draws). Returns invoice_id, wallet_applied_amount.
    """
    ordered = in_issue_order(invoices)
    drawn = (already_drawn.group_by("account_id").agg(pl.col("amount").sum().cast(WORK).alias("_drawn")))
    applied = [pl.DataFrame(schema={"invoice_id": pl.String, "wallet_applied_amount": WORK})]
    for rank in range(ordered["_rank"].max() + 1 if ordered.height else 0):
        batch = ordered.filter(pl.col("_rank") == rank).select("invoice_id", "account_id", "issue_date",
                                                              "total_amount")
        topped = (batch.join(topups, on="account_id", how="inner")
                  .filter(pl.col("topup_date") <= pl.col("issue_date"))
                  .group_by("invoice_id").agg(pl.col("amount").sum().cast(WORK).alias("_topped")))
        step = (batch.join(topped, on="invoice_id", how="left").join(drawn, on="account_id", how="left")
                .with_columns((pl.col("_topped").fill_null(zero()) - pl.col("_drawn").fill_null(zero()))
                              .alias("_balance"))
                .with_columns(clamp_low(pl.min_horizontal(pl.col("_balance"), pl.col("total_amount")), zero())
                              .alias("wallet_applied_amount")))
        applied.append(step.select("invoice_id", "wallet_applied_amount"))
        drawn = (pl.concat([drawn, step.select("account_id", pl.col("wallet_applied_amount").alias("_drawn"))])
                 .group_by("account_id").agg(pl.col("_drawn").sum()))
    return pl.concat(applied, how="vertical")
