"""The catalog's rate cards as Polars frames: one row per (plan, card) and per (plan, card, tier)."""
from __future__ import annotations

import polars as pl

from dagster_project.catalog import Catalog
from dagster_project.money import WORK, minor_unit_digits

USAGE_CARD_SCHEMA = {
    "price_plan": pl.String, "line_position": pl.Int32, "billable_item": pl.String, "line_type": pl.String,
    "description": pl.String, "meter_name": pl.String, "model": pl.String, "currency_digits": pl.Int32,
    "unit_price": WORK, "rate": WORK, "fixed_fee_per_event": WORK, "package_size": WORK, "package_price": WORK,
    "free_units": WORK, "minimum_amount": WORK, "maximum_amount": WORK,
}
TIER_SCHEMA = {
    "price_plan": pl.String, "billable_item": pl.String, "tier": pl.Int32, "tier_from": WORK, "tier_up_to": WORK,
    "unit_price": WORK, "flat_fee": WORK,
}


def usage_cards(catalog: Catalog) -> pl.LazyFrame:
    rows = []
    for plan in catalog.price_plans.values():
        for position, card in enumerate(plan.rate_cards.usage):
            item = catalog.billable_items[card.billable_item]
            rows.append({
                "price_plan": plan.name, "line_position": position, "billable_item": item.name,
                "line_type": item.type, "description": item.billable_name, "meter_name": item.usage_meter,
                "model": card.model, "currency_digits": minor_unit_digits(plan.currency),
                "unit_price": getattr(card, "unit_price", None), "rate": getattr(card, "rate", None),
                "fixed_fee_per_event": getattr(card, "fixed_fee_per_event", None),
                "package_size": getattr(card, "package_size", None),
                "package_price": getattr(card, "package_price", None),
                "free_units": getattr(card, "free_units", None),
                "minimum_amount": card.minimum_amount, "maximum_amount": card.maximum_amount,
            })
    return pl.LazyFrame(rows, schema=USAGE_CARD_SCHEMA)


def usage_tiers(catalog: Catalog) -> pl.LazyFrame:
    rows = []
    for plan in catalog.price_plans.values():
        for card in plan.rate_cards.usage:
            if card.model not in ("tiered", "volume"):
                continue
            lower = 0
            for number, tier in enumerate(card.tiers, start=1):
                rows.append({"price_plan": plan.name, "billable_item": card.billable_item, "tier": number,
                             "tier_from": lower, "tier_up_to": tier.up_to, "unit_price": tier.unit_price,
                             "flat_fee": tier.flat_fee})
                lower = tier.up_to
    return pl.LazyFrame(rows, schema=TIER_SCHEMA)


LICENSE_CARD_SCHEMA = {
    "price_plan": pl.String, "line_position": pl.Int32, "billable_item": pl.String, "description": pl.String,
    "unit_price": WORK, "proration": pl.String,
}
FEE_CARD_SCHEMA = {
    "price_plan": pl.String, "line_position": pl.Int32, "billable_item": pl.String, "description": pl.String,
    "fee_amount": WORK, "recurrence": pl.String, "timing": pl.String, "prorate": pl.Boolean,
}


def license_cards(catalog: Catalog) -> pl.LazyFrame:
    rows = [{"price_plan": plan.name, "line_position": position, "billable_item": card.billable_item,
             "description": catalog.billable_items[card.billable_item].billable_name,
             "unit_price": card.unit_price, "proration": card.proration}
            for plan in catalog.price_plans.values() for position, card in enumerate(plan.rate_cards.licenses)]
    return pl.LazyFrame(rows, schema=LICENSE_CARD_SCHEMA)


def fee_cards(catalog: Catalog) -> pl.LazyFrame:
    rows = [{"price_plan": plan.name, "line_position": position, "billable_item": card.billable_item,
             "description": catalog.billable_items[card.billable_item].billable_name, "fee_amount": card.amount,
             "recurrence": card.recurrence, "timing": card.timing, "prorate": card.prorate}
            for plan in catalog.price_plans.values() for position, card in enumerate(plan.rate_cards.fixed_fees)]
    return pl.LazyFrame(rows, schema=FEE_CARD_SCHEMA)


def plans_with_fees_in_advance(catalog: Catalog) -> list[str]:
    """Plans whose first cycle has an opening invoice (README)."""
    return [plan.name for plan in catalog.price_plans.values()
            if any(card.timing == "in_advance" for card in plan.rate_cards.fixed_fees)]
