"""The money kernel: currencies, exact arithmetic in Polars, one rounding per line, money text.

Catalog, rating and invoicing import this module; it imports none of them. Currency facts (which
codes are ISO 4217, how many minor-unit digits each has) come from Babel's CLDR data, never from
a hand-written table.

All rating arithmetic is Decimal(38, 18): products and quotients are exact whenever the inputs'
decimal places add up to 18 or fewer, and a quotient by a day count (at most 366) is never close
enough to a rounding tie for its 18th-place rounding to change the line's final rounding.
"""
from __future__ import annotations

from decimal import Decimal
from functools import cache

import polars as pl
from babel.localedata import locale_identifiers
from babel.numbers import get_currency_precision, list_currencies

WORK = pl.Decimal(38, 18)


@cache
def iso_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def is_iso_currency(code: str) -> bool:
    return code in iso_currencies()


@cache
def known_locales() -> frozenset[str]:
    """The CLDR locales Babel can format money for, spelled as Babel spells them (en_US, de_CH)."""
    return frozenset(locale_identifiers()) - {"root"}


def is_known_locale(name: str) -> bool:
    return name in known_locales()


@cache
def minor_unit_digits(currency: str) -> int:
    """ISO 4217 minor units: USD 2, JPY 0, KWD 3, CLF 4."""
    if not is_iso_currency(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code")
    return get_currency_precision(currency)


MINOR_UNIT_DIGITS = sorted({get_currency_precision(code) for code in list_currencies()})


def dec(value) -> pl.Expr:
    """A decimal literal in the working type (from str, int or Decimal; never a float)."""
    if isinstance(value, float):
        raise TypeError("money is never a float")
    return pl.lit(Decimal(value), dtype=WORK)


def zero() -> pl.Expr:
    return dec(0)


def round_money(amount: pl.Expr, digits: pl.Expr, mode: str) -> pl.Expr:
    """Round to the currency's minor unit (`digits` per row) with the configured mode."""
    *others, last = MINOR_UNIT_DIGITS
    rounded = _round(amount, last, mode)
    for places in reversed(others):
        rounded = pl.when(digits == places).then(_round(amount, places, mode)).otherwise(rounded)
    return rounded.cast(WORK)


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
