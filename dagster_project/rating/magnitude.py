"""Amounts that could leave the working decimal's range, found before any arithmetic is done.

Rating works in Decimal(38, 18): amounts below 10^20. A meter quantity can be far larger than
any real bill (a sum of 10^11 values of 10^18 is still exact in the warehouse), and Polars refuses
an overflowing product, which would fail everyone's run. So before rating, every line is bounded
by digit counts: |q| < 10^a and |price| < 10^b give |q x price| < 10^(a+b). A line that could
reach 10^18 holds its account back, with the reason; everyone else is rated as usual.
"""
from __future__ import annotations

from decimal import Decimal

import polars as pl

from dagster_project.catalog import Catalog

LINE_LIMIT_DIGITS = 18  # a line stays below 10^18, so an invoice's sums stay below 10^20


def magnitude(value: Decimal) -> int:
    """The smallest k with |value| < 10^k."""
    whole = int(abs(value)) if value is not None else 0
    return len(str(whole)) if whole else 0


def _magnitude_expr(column: str) -> pl.Expr:
    """magnitude() of a Decimal column, exactly: the length of its integer digits' text."""
    whole = pl.col(column).abs().cast(pl.String).str.split(".").list.first()
    return pl.when(whole == "0").then(0).otherwise(whole.str.len_chars()).cast(pl.Int32)


def usage_multipliers(catalog: Catalog) -> pl.DataFrame:
    """Per plan and meter: the magnitude of the largest price a unit can cost, of the per-event fee,
    and of the constant part (flat fees, one package) of its usage line."""
    rows = []
    for plan in catalog.price_plans.values():
        for card in plan.rate_cards.usage:
            per_unit, per_event, constant = Decimal(0), Decimal(0), Decimal(0)
            if card.model == "per_unit":
                per_unit = card.unit_price
            elif card.model == "percentage":
                per_unit, per_event = card.rate, card.fixed_fee_per_event
            elif card.model in ("tiered", "volume"):
                per_unit = max(tier.unit_price for tier in card.tiers)
                constant = sum((tier.flat_fee for tier in card.tiers), Decimal(0))
            elif card.model == "package":
                per_unit, constant = card.package_price / card.package_size, card.package_price
            rows.append({"price_plan": plan.name, "meter_name": catalog.billable_items[card.billable_item].usage_meter,
                         "unit_magnitude": magnitude(per_unit), "event_magnitude": magnitude(per_event),
                         "constant_magnitude": magnitude(constant)})
    return pl.DataFrame(rows, schema={"price_plan": pl.String, "meter_name": pl.String, "unit_magnitude": pl.Int32,
                                      "event_magnitude": pl.Int32, "constant_magnitude": pl.Int32})


def license_multipliers(catalog: Catalog) -> pl.DataFrame:
    rows = [{"price_plan": plan.name, "billable_item": card.billable_item,
             "unit_magnitude": magnitude(card.unit_price)}
            for plan in catalog.price_plans.values() for card in plan.rate_cards.licenses]
    return pl.DataFrame(rows, schema={"price_plan": pl.String, "billable_item": pl.String,
                                      "unit_magnitude": pl.Int32})


def out_of_range(catalog: Catalog, due: pl.DataFrame, meter_usage: pl.DataFrame,
                 license_intervals: pl.DataFrame) -> pl.DataFrame:
    """Accounts whose lines could reach 10^18, with a reason naming the meter and the limit.

    due: invoice_id, account_id, cycle_id, price_plan; meter_usage: cycle_id, meter_name, quantity,
    event_count; license_intervals: cycle_id, billable_item, quantity.
    """
    invoices = due.select("account_id", "cycle_id", "price_plan")
    usage = (meter_usage.join(invoices, on="cycle_id", how="inner")
             .join(usage_multipliers(catalog), on=["price_plan", "meter_name"], how="inner")
             .with_columns(_magnitude_expr("quantity").alias("q"),
                           pl.col("event_count").cast(pl.String).str.len_chars().cast(pl.Int32).alias("n"))
             .filter((pl.col("q") + pl.col("unit_magnitude") > LINE_LIMIT_DIGITS)
                     | (pl.col("n") + pl.col("event_magnitude") > LINE_LIMIT_DIGITS)
                     | (pl.col("constant_magnitude") > LINE_LIMIT_DIGITS))
             .select("account_id", pl.format("meter {} measured {} in cycle {}: amounts of {} or more cannot be "
                                             "rated exactly", "meter_name", pl.col("quantity").cast(pl.String),
                                             "cycle_id", pl.lit(f"10^{LINE_LIMIT_DIGITS}")).alias("reason")))
    seats = (license_intervals.join(invoices, on="cycle_id", how="inner")
             .join(license_multipliers(catalog), on=["price_plan", "billable_item"], how="inner")
             .with_columns(_magnitude_expr("quantity").alias("q"))
             .filter(pl.col("q") + pl.col("unit_magnitude") > LINE_LIMIT_DIGITS)
             .select("account_id", pl.format("license {} of {} in cycle {}: amounts of {} or more cannot be rated "
                                             "exactly", "billable_item", pl.col("quantity").cast(pl.String),
                                             "cycle_id", pl.lit(f"10^{LINE_LIMIT_DIGITS}")).alias("reason")))
    return (pl.concat([usage, seats]).group_by("account_id", maintain_order=True)
            .agg(pl.col("reason").first()).sort("account_id"))
