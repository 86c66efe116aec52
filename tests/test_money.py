"""Rounding once per line, in each configured mode, and the text forms of money and quantities."""
from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest

from dagster_project.money import WORK, format_money, format_quantity, is_iso_currency, minor_unit_digits, round_money


def rounded(values: list[str], mode: str, digits: int = 2) -> list[Decimal]:
    frame = pl.DataFrame({"amount": [Decimal(v) for v in values]}, schema={"amount": WORK})
    out = frame.select(round_money(pl.col("amount"), pl.lit(digits), mode))
    return [v.normalize() if v != 0 else Decimal(0) for v in out.to_series().to_list()]


@pytest.mark.parametrize("mode, expected", [
    ("half_up", ["2.68", "2.67", "-2.68", "0.01", "-0.01", "10.74"]),
    ("half_even", ["2.68", "2.66", "-2.68", "0", "0", "10.74"]),
    ("down", ["2.67", "2.66", "-2.67", "0", "0", "10.74"]),
])
def test_rounding_modes(mode, expected):
    values = ["2.675", "2.665", "-2.675", "0.005", "-0.005", "10.74421"]
    assert rounded(values, mode) == [Decimal(e) for e in expected]


def test_zero_digit_currencies_round_to_whole_units():
    assert rounded(["1234.5", "1233.5"], "half_even", digits=0) == [Decimal("1234"), Decimal("1234")]
    assert rounded(["1234.5"], "half_up", digits=0) == [Decimal("1235")]


def test_money_text_has_exactly_the_minor_unit_digits():
    assert format_money(Decimal("35.1"), 2) == "35.10"
    assert format_money(Decimal("0"), 2) == "0.00"
    assert format_money(Decimal("-0.00"), 2) == "0.00"
    assert format_money(Decimal("1200"), 0) == "1200"
    assert format_money(Decimal("-5"), 2) == "-5.00"


def test_quantity_text_has_no_trailing_zeros_or_exponent():
    assert format_quantity(Decimal("12500.000000000000000000")) == "12500"
    assert format_quantity(Decimal("370.490000")) == "370.49"
    assert format_quantity(Decimal("0E-18")) == "0"
    assert format_quantity(Decimal("0.000000000000000001")) == "0.000000000000000001"


def test_minor_units_come_from_iso_4217_data():
    assert [minor_unit_digits(c) for c in ("USD", "EUR", "JPY", "KRW", "KWD", "BHD", "OMR")] == [2, 2, 0, 0, 3, 3, 3]
    assert not is_iso_currency("XYZ")
    with pytest.raises(ValueError, match="XYZ"):
        minor_unit_digits("XYZ")


def test_three_digit_currencies_round_to_thousandths():
    assert rounded(["1.2345", "-1.2345", "0.0005"], "half_up", digits=3) == [
        Decimal("1.235"), Decimal("-1.235"), Decimal("0.001")]
    assert rounded(["1.2345"], "half_even", digits=3) == [Decimal("1.234")]
    assert format_money(Decimal("12.3"), 3) == "12.300"
