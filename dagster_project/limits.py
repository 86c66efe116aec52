"""The range of numbers Tally accepts, defined once.

Event attribute values and reference-data decimals have at most INTEGER_DIGITS digits before the
decimal point and DECIMAL_PLACES after it. The warehouse sums meter values as DECIMAL(38, 9):
exact up to 10^29, so a sum cannot overflow before one account sends 10^11 events of the largest
value in one cycle. Rating works in Decimal(38, 18) (amounts below 10^20); an account whose
amounts would leave that range is held back, never billed wrong (see invoicing/billing.py).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

INTEGER_DIGITS = 18
DECIMAL_PLACES = 9
METER_DECIMAL = f"decimal(38, {DECIMAL_PLACES})"


def decimal_problem(text: str) -> str | None:
    """Why a decimal's text is outside the supported range or scale, or None when it fits."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return f"'{text}' is not a decimal number"
    if not value.is_finite():
        return f"'{text}' is not a finite number"
    sign, digits, exponent = value.normalize().as_tuple()
    places = max(-exponent, 0)
    integer_digits = max(len(digits) + exponent, 0)
    if integer_digits > INTEGER_DIGITS:
        return (f"'{text}' has {integer_digits} digits before the decimal point; the supported range is "
                f"{INTEGER_DIGITS}")
    if places > DECIMAL_PLACES:
        return f"'{text}' has {places} decimal places; the supported scale is {DECIMAL_PLACES}"
    return None


def dbt_vars() -> dict[str, int]:
    """The limits as dbt vars, so the SQL validation of events uses these same numbers."""
    return {"value_integer_digits": INTEGER_DIGITS, "value_decimal_places": DECIMAL_PLACES}
