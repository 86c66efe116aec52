"""Exact money arithmetic in Polars: one working decimal type, one rounding per line.

All rating arithmetic is Decimal(38, 18): products and quotients are exact whenever the inputs'
decimal places add up to 18 or fewer, and a quotient by a day count (at most 366) is never close
enough to a rounding tie for its 18th-place rounding to change the line's final rounding.
"""
from __future__ import annotations

from decimal import Decimal

import polars as pl

WORK = pl.Decimal(38, 18)
ZERO_DIGIT_CURRENCIES = frozenset({"JPY", "KRW"})


def minor_unit_digits(currency: str) -> int:
    return 0 if currency in ZERO_DIGIT_CURRENCIES else 2


def dec(value) -> pl.Expr:
    """A decimal literal in the working type (from str, int or Decimal; never a float)."""
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return pl.lit(Decimal(value), dtype=WORK)


def zero() -> pl.Expr:
    return dec(0)


def round_money(amount: pl.Expr, digits: pl.Expr, mode: str) -> pl.Expr:
    """Round to the currency's minor unit (`digits` per row: 0 or 2) with the configured mode."""
    return (pl.when(digits == 0).then(_round(amount, 0, mode))
            .otherwise(_round(amount, 2, mode))
            .cast(WORK))


def _round(amount: pl.Expr, places: int, mode: str) -> pl.Expr:
    if mode == "half_up":
        return amount.round(places, mode="half_away_from_zero")
    if mode == "half_even":
        return amount.round(places, mode="half_to_even")
    if mode == "down":  # toward zero
        scale = dec(10 ** places)
        scaled = amount * scale
        return pl.when(amount >= 0).then(scaled.floor()).otherwise(scaled.ceil()) / scale
    raise ValueError(f"unknown rounding mode {mode!r}")


def clamp_low(value: pl.Expr, low: pl.Expr) -> pl.Expr:
    return pl.when(value < low).then(low).otherwise(value)


def clamp_high(value: pl.Expr, high: pl.Expr) -> pl.Expr:
    return pl.when(value > high).then(high).otherwise(value)


def format_money(value: Decimal, digits: int) -> str:
    """Exactly the currency's minor-unit digits: 0.00, 35.11, 1200 (JPY)."""
    quantum = Decimal(1).scaleb(-digits)
    text = format(Decimal(value).quantize(quantum), "f")
    return "0" + text[2:] if text.startswith("-0") and Decimal(text) == 0 else text


def format_quantity(value: Decimal | None) -> str | None:
    """Decimal text without trailing zeros or exponent: 12500, 370.49, 0."""
    if value is None:
        return None
    normalized = Decimal(value).normalize()
    text = format(normalized, "f")
    return "0" if Decimal(text) == 0 else text
