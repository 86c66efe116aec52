"""Licenses (README) and fixed fees (README): day proration on month ends and leap years."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from dagster_project.money import WORK
from dagster_project.rating.fees import rate_fees
from dagster_project.rating.licenses import rate_licenses

LICENSE_CARDS = pl.LazyFrame(
    {"price_plan": ["daily", "peak"], "line_position": [0, 0], "billable_item": ["seats", "seats"],
     "description": ["Seats", "Seats"], "unit_price": [Decimal(12), Decimal(12)], "proration": ["daily", "none"]},
    schema={"price_plan": pl.String, "line_position": pl.Int32, "billable_item": pl.String, "description": pl.String,
            "unit_price": WORK, "proration": pl.String})


def license_line(plan: str, period_end: date, full_days: int, held: list[tuple[str, date, date]]) -> dict:
    invoices = pl.LazyFrame({"invoice_id": ["i"], "cycle_id": ["c"], "price_plan": [plan],
                             "period_end_date": [period_end], "full_period_days": [full_days],
                             "currency_digits": [2]},
                            schema_overrides={"full_period_days": pl.Int32, "currency_digits": pl.Int32})
    intervals = pl.LazyFrame(
        {"cycle_id": ["c"] * len(held), "billable_item": ["seats"] * len(held),
         "quantity": [Decimal(q) for q, _, _ in held], "interval_start_date": [s for _, s, _ in held],
         "interval_end_date": [e for _, _, e in held], "days": [(e - s).days for _, s, e in held]},
        schema={"cycle_id": pl.String, "billable_item": pl.String, "quantity": WORK, "interval_start_date": pl.Date,
                "interval_end_date": pl.Date, "days": pl.Int32})
    return rate_licenses(invoices, intervals, LICENSE_CARDS, "half_up").collect().row(0, named=True)


def test_daily_proration_sums_seat_days_over_the_full_cycle():
    # case 03: 5 seats for 10 days, 8 for 10, 3 for 11 in October: 163 seat-days x 12 / 31 = 63.10
    line = license_line("daily", date(2026, 11, 1), 31, [
        ("5", date(2026, 10, 1), date(2026, 10, 11)), ("8", date(2026, 10, 11), date(2026, 10, 21)),
        ("3", date(2026, 10, 21), date(2026, 11, 1))])
    assert line["amount"] == Decimal("63.10")
    assert line["quantity"] == Decimal(3)  # held on the cycle's last day
    assert [(d["days"], d["quantity"]) for d in line["details"]] == [(10, 5), (10, 8), (11, 3)]


def test_a_leap_february_has_29_days():
    # 29 days of 2 seats in February 2028 is exactly a full month
    full = license_line("daily", date(2028, 3, 1), 29, [("2", date(2028, 2, 1), date(2028, 3, 1))])
    assert full["amount"] == Decimal("24.00")
    # 1 day of 1 seat out of 29: 12 / 29 = 0.4137... -> 0.41
    one_day = license_line("daily", date(2028, 3, 1), 29, [("1", date(2028, 2, 29), date(2028, 3, 1))])
    assert one_day["amount"] == Decimal("0.41")


def test_seats_released_before_the_last_day_leave_quantity_zero():
    line = license_line("daily", date(2026, 12, 1), 30, [("4", date(2026, 11, 1), date(2026, 11, 16))])
    assert (line["quantity"], line["amount"]) == (Decimal(0), Decimal("24.00"))  # 4 x 15 x 12 / 30


def test_no_proration_bills_the_peak():
    line = license_line("peak", date(2026, 11, 1), 31, [
        ("5", date(2026, 10, 1), date(2026, 10, 11)), ("8", date(2026, 10, 11), date(2026, 10, 21)),
        ("3", date(2026, 10, 21), date(2026, 11, 1))])
    assert (line["quantity"], line["amount"]) == (Decimal(8), Decimal("96.00"))


def test_a_license_never_held_is_a_zero_line():
    line = license_line("daily", date(2026, 11, 1), 31, [])
    assert (line["quantity"], line["amount"]) == (Decimal(0), Decimal(0))


FEE_CARDS = pl.LazyFrame(
    {"price_plan": ["p"] * 4, "line_position": [0, 1, 2, 3],
     "billable_item": ["arrears_fee", "advance_fee", "setup_now", "setup_later"],
     "description": ["In arrears", "In advance", "Setup (advance)", "Setup (arrears)"],
     "fee_amount": [Decimal(99), Decimal(31), Decimal(500), Decimal(100)],
     "recurrence": ["recurring", "recurring", "one_time", "one_time"],
     "timing": ["in_arrears", "in_advance", "in_advance", "in_arrears"], "prorate": [True, True, False, False]},
    schema={"price_plan": pl.String, "line_position": pl.Int32, "billable_item": pl.String, "description": pl.String,
            "fee_amount": WORK, "recurrence": pl.String, "timing": pl.String, "prorate": pl.Boolean})


def fees(arrears: tuple | None, advance: tuple | None) -> dict[str, Decimal]:
    """arrears/advance: (cycle_index, days, full_days) of the cycle each timing pays for."""
    row = {"invoice_id": "i", "price_plan": "p", "currency_digits": 2}
    for prefix, facts in (("arrears", arrears), ("advance", advance)):
        index, days, full = facts or (None, None, None)
        row |= {f"{prefix}_cycle_index": index, f"{prefix}_start_date": date(2026, 1, 1),
                f"{prefix}_end_date": date(2026, 1, 1), f"{prefix}_days": days, f"{prefix}_full_days": full}
    invoices = pl.LazyFrame([row], schema_overrides={
        f"{p}_{f}": pl.Int32 for p in ("arrears", "advance") for f in ("cycle_index", "days", "full_days")})
    out = rate_fees(invoices.with_columns(pl.col("currency_digits").cast(pl.Int32)), FEE_CARDS, "half_up").collect()
    return dict(out.select("billable_item", "amount").iter_rows())


@pytest.mark.parametrize("arrears, advance, expected", [
    # cycle 0 of a mid-month start (21 of 31 days), next cycle full: the one-time arrears fee, prorated fees
    ((0, 21, 31), (1, 30, 30), {"arrears_fee": "67.06", "advance_fee": "31.00", "setup_later": "100.00"}),
    # an opening invoice: in-advance fees for cycle 0 only, one-time included
    (None, (0, 21, 31), {"advance_fee": "21.00", "setup_now": "500.00"}),
    # a later cycle whose successor ends early (an assignment end): the advance fee is prorated
    ((3, 31, 31), (4, 15, 30), {"arrears_fee": "99.00", "advance_fee": "15.50"}),
    # the last cycle of an assignment has no successor: nothing in advance
    ((5, 10, 30), None, {"arrears_fee": "33.00"}),
])
def test_fees_pay_for_the_right_cycle(arrears, advance, expected):
    assert fees(arrears, advance) == {k: Decimal(v) for k, v in expected.items()}
