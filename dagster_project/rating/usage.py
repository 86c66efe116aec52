"""Usage lines (README): the five usage models, each one function over every line at once.

Each model returns (line key, unrounded amount, details) where details is the list of breakdown
rows that produced the amount (tier by tier, the package arithmetic, the percentage and the
per-event fee). Then min/max clamps apply and the amount is rounded once, to the minor unit.
"""
from __future__ import annotations

import polars as pl

from dagster_project.money import WORK, clamp_high, clamp_low, dec, round_money, zero

LINE_KEY = ["invoice_id", "line_position"]
DETAIL_FIELDS = {
    "kind": pl.String, "tier": pl.Int32, "from": WORK, "up_to": WORK, "from_date": pl.Date, "to_date": pl.Date,
    "days": pl.Int32, "full_days": pl.Int32, "quantity": WORK, "unit_price": WORK, "flat_fee": WORK, "rate": WORK,
    "free_units": WORK, "billable_units": WORK, "package_size": WORK, "packages": WORK, "rule": pl.String,
    "amount": WORK,
}
DETAIL = pl.Struct(DETAIL_FIELDS)


def detail(**fields: pl.Expr) -> pl.Expr:
    """One breakdown row; fields not given are null, so every model shares one struct type."""
    unknown = set(fields) - set(DETAIL_FIELDS)
    if unknown:
        raise ValueError(f"unknown detail fields {unknown}")
    return pl.struct([
        (fields[name].cast(dtype) if name in fields else pl.lit(None, dtype=dtype)).alias(name)
        for name, dtype in DETAIL_FIELDS.items()
    ])


def rate_usage(usage: pl.LazyFrame, cards: pl.LazyFrame, tiers: pl.LazyFrame, rounding: str) -> pl.LazyFrame:
    """Rated usage lines, one per (invoice, usage rate card).

    usage: invoice_id, price_plan, meter_name, quantity, event_count (every meter of the plan,
    0 when nothing was metered). cards/tiers: rate_cards.usage_cards / usage_tiers.
    """
    lines = (usage.join(cards, on=["price_plan", "meter_name"], how="inner")
             .with_columns(pl.col("event_count").cast(WORK).alias("event_count_dec")))
    priced = pl.concat([
        _per_unit(lines.filter(pl.col("model") == "per_unit")),
        _percentage(lines.filter(pl.col("model") == "percentage")),
        _package(lines.filter(pl.col("model") == "package")),
        _tiered(lines.filter(pl.col("model") == "tiered"), tiers),
        _volume(lines.filter(pl.col("model") == "volume"), tiers),
    ], how="vertical")
    return (lines.join(priced, on=LINE_KEY, how="inner")
            .pipe(_clamp)
            .with_columns(round_money(pl.col("amount"), pl.col("currency_digits"), rounding).alias("amount"))
            .select("invoice_id", "line_position", "line_type", "billable_item", "description", "quantity",
                    "amount", "details"))


def _per_unit(lines: pl.LazyFrame) -> pl.LazyFrame:
    amount = pl.col("quantity") * pl.col("unit_price")
    return lines.select(
        *LINE_KEY, amount.alias("amount"),
        pl.concat_list(detail(kind=pl.lit("per_unit"), quantity=pl.col("quantity"), unit_price=pl.col("unit_price"),
                              amount=amount)).alias("details"))


def _percentage(lines: pl.LazyFrame) -> pl.LazyFrame:
    share = pl.col("quantity") * pl.col("rate")
    fees = pl.col("event_count_dec") * pl.col("fixed_fee_per_event")
    share_detail = detail(kind=pl.lit("percentage"), quantity=pl.col("quantity"), rate=pl.col("rate"), amount=share)
    fee_detail = detail(kind=pl.lit("per_event_fee"), quantity=pl.col("event_count_dec"),
                        unit_price=pl.col("fixed_fee_per_event"), amount=fees)
    return lines.select(
        *LINE_KEY, (share + fees).alias("amount"),
        pl.when(pl.col("fixed_fee_per_event") > 0)
        .then(pl.concat_list(share_detail, fee_detail))
        .otherwise(pl.concat_list(share_detail)).alias("details"))


def _package(lines: pl.LazyFrame) -> pl.LazyFrame:
    billable = clamp_low(pl.col("quantity") - pl.col("free_units"), zero())
    # ceil(billable / size), exact even when the quotient's 18th-place rounding lands on an integer
    whole = (billable / pl.col("package_size")).floor()
    packages = pl.when(whole * pl.col("package_size") < billable).then(whole + dec(1)).otherwise(whole)
    return (lines.with_columns(billable.alias("billable_units"), packages.alias("packages"))
            .select(*LINE_KEY, (pl.col("packages") * pl.col("package_price")).alias("amount"),
                    pl.concat_list(detail(
                        kind=pl.lit("package"), quantity=pl.col("quantity"), free_units=pl.col("free_units"),
                        billable_units=pl.col("billable_units"), package_size=pl.col("package_size"),
                        packages=pl.col("packages"), unit_price=pl.col("package_price"),
                        amount=pl.col("packages") * pl.col("package_price"))).alias("details")))


def _tier_frame(lines: pl.LazyFrame, tiers: pl.LazyFrame) -> pl.LazyFrame:
    return (lines.select(*LINE_KEY, "price_plan", "billable_item", "quantity")
            .join(tiers.rename({"unit_price": "tier_unit_price"}), on=["price_plan", "billable_item"], how="inner"))


def _tiered(lines: pl.LazyFrame, tiers: pl.LazyFrame) -> pl.LazyFrame:
    """Graduated: each tier prices the units that fall inside it, plus its flat fee if any do."""
    above_lower = clamp_low(pl.col("quantity") - pl.col("tier_from"), zero())
    units = pl.when(pl.col("tier_up_to").is_null()).then(above_lower).otherwise(
        clamp_high(above_lower, pl.col("tier_up_to") - pl.col("tier_from")))
    flat = pl.when(pl.col("units") > 0).then(pl.col("flat_fee")).otherwise(zero())
    tier_amount = pl.col("units") * pl.col("tier_unit_price") + pl.col("applied_flat_fee")
    return (_tier_frame(lines, tiers)
            .with_columns(units.alias("units"))
            .with_columns(flat.alias("applied_flat_fee"))
            .with_columns(tier_amount.alias("tier_amount"))
            .group_by(LINE_KEY)
            .agg(pl.col("tier_amount").sum().alias("amount"),
                 detail(kind=pl.lit("tier"), tier=pl.col("tier"), **{"from": pl.col("tier_from")},
                        up_to=pl.col("tier_up_to"), quantity=pl.col("units"), unit_price=pl.col("tier_unit_price"),
                        flat_fee=pl.col("applied_flat_fee"), amount=pl.col("tier_amount"))
                 .sort_by(pl.col("tier")).alias("details")))


def _volume(lines: pl.LazyFrame, tiers: pl.LazyFrame) -> pl.LazyFrame:
    """Volume: the single tier that holds q prices every unit; q = 0 costs nothing."""
    in_tier = (pl.col("quantity") > pl.col("tier_from")) & (
        pl.col("tier_up_to").is_null() | (pl.col("quantity") <= pl.col("tier_up_to")))
    amount = pl.col("quantity") * pl.col("tier_unit_price") + pl.col("flat_fee")
    matched = (_tier_frame(lines, tiers).filter(in_tier)
               .select(*LINE_KEY, amount.alias("amount"),
                       pl.concat_list(detail(kind=pl.lit("volume_tier"), tier=pl.col("tier"),
                                             **{"from": pl.col("tier_from")}, up_to=pl.col("tier_up_to"),
                                             quantity=pl.col("quantity"), unit_price=pl.col("tier_unit_price"),
                                             flat_fee=pl.col("flat_fee"), amount=amount)).alias("details")))
    no_tier = detail(kind=pl.lit("volume_tier"), quantity=pl.col("quantity"), amount=zero())
    return (lines.select(*LINE_KEY, "quantity")
            .join(matched, on=LINE_KEY, how="left")
            .select(*LINE_KEY, pl.col("amount").fill_null(zero()),
                    pl.coalesce(pl.col("details"), pl.concat_list(no_tier)).alias("details")))


def _clamp(lines: pl.LazyFrame) -> pl.LazyFrame:
    """minimum_amount / maximum_amount clamp the line; the clamp is a detail row of its own."""
    below = pl.col("minimum_amount").is_not_null() & (pl.col("amount") < pl.col("minimum_amount"))
    above = pl.col("maximum_amount").is_not_null() & (pl.col("amount") > pl.col("maximum_amount"))
    return lines.with_columns(
        pl.when(below).then(pl.col("minimum_amount"))
        .when(above).then(pl.col("maximum_amount"))
        .otherwise(pl.col("amount")).alias("amount"),
        pl.when(below).then(pl.concat_list("details", detail(kind=pl.lit("minimum_amount"),
                                                             amount=pl.col("minimum_amount"))))
        .when(above).then(pl.concat_list("details", detail(kind=pl.lit("maximum_amount"),
                                                           amount=pl.col("maximum_amount"))))
        .otherwise(pl.col("details")).alias("details"),
    )
