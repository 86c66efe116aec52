"""Fixed fee lines (README): recurring or one-time, in arrears or in advance, prorated or not.

A cycle invoice carries the in-arrears fees of its own cycle and the in-advance fees of the next
cycle of the same assignment; an opening invoice carries the in-advance fees of cycle 0.
"""
from __future__ import annotations

import polars as pl

from dagster_project.money import WORK, dec, round_money
from dagster_project.rating.usage import detail


def rate_fees(invoices: pl.LazyFrame, cards: pl.LazyFrame, rounding: str) -> pl.LazyFrame:
    """invoices: invoice_id, price_plan, currency_digits, and for each timing the cycle it pays for
    (null when there is none): arrears_/advance_ cycle_index, start_date, end_date, days, full_days."""
    lines = invoices.join(cards, on="price_plan", how="inner")
    paid = pl.concat([_for_timing(lines, "in_arrears", "arrears"), _for_timing(lines, "in_advance", "advance")])
    factor = pl.col("days").cast(WORK) / pl.col("full_days").cast(WORK)
    prorated = pl.col("prorate") & (pl.col("days") < pl.col("full_days"))
    amount = pl.when(prorated).then(pl.col("fee_amount") * pl.col("days").cast(WORK)
                                    / pl.col("full_days").cast(WORK)).otherwise(pl.col("fee_amount"))
    fee = detail(kind=pl.lit("fixed_fee"), from_date=pl.col("start_date"), to_date=pl.col("end_date"),
                 amount=pl.col("fee_amount"))
    proration = detail(kind=pl.lit("proration"), from_date=pl.col("start_date"), to_date=pl.col("end_date"),
                       days=pl.col("days"), full_days=pl.col("full_days"), rate=factor, amount=amount)
    return paid.select(
        "invoice_id", "line_position", pl.lit("fixed_fee").alias("line_type"), "billable_item", "description",
        dec(1).alias("quantity"),
        round_money(amount, pl.col("currency_digits"), rounding).alias("amount"),
        pl.when(prorated).then(pl.concat_list(fee, proration)).otherwise(pl.concat_list(fee)).alias("details"))


def _for_timing(lines: pl.LazyFrame, timing: str, prefix: str) -> pl.LazyFrame:
    """The lines of one timing, with the cycle they pay for; one-time fees only for cycle 0."""
    return (lines.filter((pl.col("timing") == timing) & pl.col(f"{prefix}_cycle_index").is_not_null())
            .filter((pl.col("recurrence") == "recurring") | (pl.col(f"{prefix}_cycle_index") == 0))
            .select("invoice_id", "line_position", "billable_item", "description", "currency_digits", "fee_amount",
                    "prorate",
                    pl.col(f"{prefix}_start_date").alias("start_date"), pl.col(f"{prefix}_end_date").alias("end_date"),
                    pl.col(f"{prefix}_days").alias("days"), pl.col(f"{prefix}_full_days").alias("full_days")))
