"""The five usage models (README) at their edges: zero, exactly on a tier boundary, one past it."""
from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from dagster_project.catalog import load_catalog
from dagster_project.money import WORK
from dagster_project.rating.rate_cards import usage_cards, usage_tiers
from dagster_project.rating.usage import rate_usage

PLAN = """
name: edge
currency: USD
billing_cycle: {interval: month}
rate_cards:
  usage:
    - billable_item: graduated
      model: tiered
      tiers:
        - {up_to: 1000, unit_price: "0"}
        - {up_to: 10000, unit_price: "0.002", flat_fee: "5"}
        - {up_to: null, unit_price: "0.001"}
    - billable_item: bulk
      model: volume
      tiers:
        - {up_to: 100, unit_price: "0.05"}
        - {up_to: 1000, unit_price: "0.04", flat_fee: "1"}
        - {up_to: null, unit_price: "0.03"}
    - {billable_item: storage, model: package, package_size: 100, package_price: "10", free_units: 50}
    - {billable_item: card_fees, model: percentage, rate: "0.029", fixed_fee_per_event: "0.30"}
    - {billable_item: calls, model: per_unit, unit_price: "0.01", minimum_amount: "5", maximum_amount: "100"}
"""
ITEMS = ["graduated", "bulk", "storage", "card_fees", "calls"]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    config = tmp_path_factory.mktemp("config")
    (config / "price_plans").mkdir()
    (config / "price_plans" / "edge.yaml").write_text(PLAN)
    (config / "billing.yaml").write_text("issuer: {name: Test}\nrounding: half_up\n")
    (config / "event_schemas.yaml").write_text("event_schemas:\n  - {name: e, attributes: [{name: v}]}\n")
    (config / "usage_meters.yaml").write_text("usage_meters:\n" + "".join(
        f"  - {{name: {i}, event_schema: e, aggregation: SUM, attribute: v}}\n" for i in ITEMS))
    (config / "billable_items.yaml").write_text("billable_items:\n" + "".join(
        f"  - {{name: {i}, billable_name: {i.title()}, type: usage, usage_meter: {i}}}\n" for i in ITEMS))
    return load_catalog(config)


def rate(catalog, item: str, quantity: str, event_count: int = 0) -> pl.DataFrame:
    usage = pl.LazyFrame({"invoice_id": ["inv"], "price_plan": ["edge"], "meter_name": [item],
                          "quantity": [Decimal(quantity)], "event_count": [event_count]},
                         schema={"invoice_id": pl.String, "price_plan": pl.String, "meter_name": pl.String,
                                 "quantity": WORK, "event_count": pl.Int64})
    return rate_usage(usage, usage_cards(catalog), usage_tiers(catalog), "half_up").collect()


def amount(catalog, item: str, quantity: str, event_count: int = 0) -> Decimal:
    return rate(catalog, item, quantity, event_count)["amount"].item().normalize()


@pytest.mark.parametrize("quantity, expected", [
    ("0", "0"),
    ("1000", "0"),            # exactly on the first boundary: all free
    ("1001", "5.002"),        # one past: the second tier's flat fee and one unit
    ("10000", "23"),          # 9000 x 0.002 + 5
    ("10001", "23.001"),
    ("12500", "25.5"),        # case 02
])
def test_tiered_is_graduated(catalog, quantity, expected):
    assert amount(catalog, "graduated", quantity) == Decimal(expected).quantize(Decimal("0.01")).normalize()


def test_tiered_details_show_every_tier(catalog):
    details = rate(catalog, "graduated", "12500")["details"].item()
    assert [(d["tier"], d["quantity"].normalize(), d["flat_fee"].normalize(), d["amount"].normalize())
            for d in details] == [(1, Decimal(1000), Decimal(0), Decimal(0)),
                                  (2, Decimal(9000), Decimal(5), Decimal(23)),
                                  (3, Decimal(2500), Decimal(0), Decimal("2.5"))]


@pytest.mark.parametrize("quantity, expected", [
    ("0", "0"),
    ("100", "5"),             # on the boundary: the first tier prices every unit
    ("101", "5.04"),          # one past: 101 x 0.04 + 1
    ("1000", "41"),
    ("1001", "30.03"),        # the third tier, no flat fee
    ("350", "15"),            # case 02
])
def test_volume_prices_every_unit_at_one_tier(catalog, quantity, expected):
    assert amount(catalog, "bulk", quantity) == Decimal(expected)


@pytest.mark.parametrize("quantity, expected", [
    ("0", "0"), ("50", "0"), ("50.5", "10"), ("150", "10"), ("150.000001", "20"), ("260", "30"),
])
def test_package_charges_whole_packages_after_free_units(catalog, quantity, expected):
    assert amount(catalog, "storage", quantity) == Decimal(expected)


def test_percentage_adds_a_fee_per_event(catalog):
    # case 01: 2.9% of 370.49 = 10.74421, plus 3 x 0.30
    assert amount(catalog, "card_fees", "370.49", event_count=3) == Decimal("11.64")
    details = rate(catalog, "card_fees", "370.49", 3)["details"].item()
    assert [d["kind"] for d in details] == ["percentage", "per_event_fee"]
    assert amount(catalog, "card_fees", "0", event_count=0) == Decimal(0)


@pytest.mark.parametrize("quantity, expected, clamp", [
    ("0", "5", "minimum_amount"),        # a line exists at q = 0 and the minimum applies
    ("499", "5", "minimum_amount"),
    ("500", "5", None),
    ("9999", "99.99", None),
    ("10001", "100", "maximum_amount"),
])
def test_minimum_and_maximum_clamp_the_line(catalog, quantity, expected, clamp):
    line = rate(catalog, "calls", quantity)
    assert line["amount"].item().normalize() == Decimal(expected).normalize()
    kinds = [d["kind"] for d in line["details"].item()]
    assert kinds == ["per_unit"] + ([clamp] if clamp else [])


def test_every_line_is_rounded_once(catalog):
    # 0.029 x 0.17 = 0.00493 rounds to 0.00; 3 events add 0.90 before rounding, not after
    assert amount(catalog, "card_fees", "0.17", event_count=3) == Decimal("0.9")
