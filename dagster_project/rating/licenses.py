"""License lines (README): seats held day by day, prorated daily or billed at their peak."""
from __future__ import annotations

import polars as pl

from dagster_project.money import WORK, round_money, zero
from dagster_project.rating.usage import detail


def rate_licenses(invoices: pl.LazyFrame, intervals: pl.LazyFrame, cards: pl.LazyFrame, rounding: str) -> pl.LazyFrame:
    """One line per (cycle invoice, license rate card).

    invoices: invoice_id, cycle_id, price_plan, period_end_date, full_period_days, currency_digits.
    intervals: cycle_id, billable_item, quantity, interval_start_date, interval_end_date, days.
    `daily`: sum over days of quantity x unit_price / days in the full cycle; the line's quantity is
    the one held on the cycle's last day. `none`: the highest quantity held on any day x unit_price.
    """
    lines = invoices.join(cards, on="price_plan", how="inner")
    held = (lines.select("invoice_id", "cycle_id", "billable_item", "period_end_date", "full_period_days",
                         "unit_price", "proration")
            .join(intervals, on=["cycle_id", "billable_item"], how="inner")
            .with_columns((pl.col("quantity") * pl.col("days").cast(WORK) * pl.col("unit_price")
                           / pl.col("full_period_days").cast(WORK)).alias("interval_amount")))
    daily = (held.filter(pl.col("proration") == "daily")
             .group_by("invoice_id", "billable_item")
             .agg(pl.col("interval_amount").sum().alias("amount"),
                  pl.col("quantity").filter(pl.col("interval_end_date") == pl.col("period_end_date")).first()
                  .alias("line_quantity"),
                  detail(kind=pl.lit("license_interval"), from_date=pl.col("interval_start_date"),
                         to_date=pl.col("interval_end_date"), days=pl.col("days"),
                         full_days=pl.col("full_period_days"), quantity=pl.col("quantity"),
                         unit_price=pl.col("unit_price"), amount=pl.col("interval_amount"))
                  .sort_by(pl.col("interval_start_date")).alias("details")))
    peak = (held.filter(pl.col("proration") == "none")
            .group_by("invoice_id", "billable_item")
            .agg(pl.col("quantity").max().alias("line_quantity"), pl.col("unit_price").first())
            .with_columns((pl.col("line_quantity") * pl.col("unit_price")).alias("amount"))
            .with_columns(pl.concat_list(detail(kind=pl.lit("license_peak"), quantity=pl.col("line_quantity"),
                                                unit_price=pl.col("unit_price"), amount=pl.col("amount")))
                          .alias("details"))
            .drop("unit_price"))
    priced = pl.concat([daily, peak.select(daily.collect_schema().names())], how="vertical")
    nothing_held = pl.concat_list(detail(kind=pl.lit("license_interval"), quantity=zero(), amount=zero()))
    return (lines.join(priced, on=["invoice_id", "billable_item"], how="left")
            .select("invoice_id", "line_position", pl.lit("license").alias("line_type"), "billable_item",
                    "description",
                    pl.col("line_quantity").fill_null(zero()).cast(WORK).alias("quantity"),
                    round_money(pl.col("amount").fill_null(zero()), pl.col("currency_digits"), rounding)
                    .alias("amount"),
                    pl.coalesce(pl.col("details"), nothing_held).alias("details")))


