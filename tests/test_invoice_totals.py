"""Property: whatever the lines, grants, top-ups and tax rates, every invoice's totals add up."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dagster_project.catalog import load_catalog
from dagster_project.invoicing.assembly import Ledgers, assemble
from dagster_project.money import WORK
from dagster_project.rating.usage import DETAIL
from tests.conftest import CASES

START = date(2026, 8, 1)


@pytest.fixture(scope="module")
def catalog():
    # case 04: a minimum commitment of 100 and VAT 20% (replaced by an account's tax_rate)
    return load_catalog(CASES / "04_credits_commitment_tax" / "pricing_config")


cents = st.decimals(min_value=-100, max_value=1000, places=2)


@st.composite
def billing(draw):
    count = draw(st.integers(min_value=1, max_value=5))
    ends = sorted(draw(st.lists(st.integers(min_value=1, max_value=150), min_size=count, max_size=count)))
    invoices = pl.DataFrame([{
        "invoice_id": f"i{n}", "account_id": draw(st.sampled_from(["a", "b"])), "kind": "cycle",
        "price_plan": "committed", "currency": "USD", "currency_digits": 2, "cycle_id": f"c{n}", "cycle_index": n,
        "period_days": 30, "full_period_days": 30, "period_end_date": START + timedelta(days=end),
        "issue_date": START + timedelta(days=end + 3),
        "tax_rate": draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=Decimal("0.3"), places=3))),
    } for n, end in enumerate(ends)], schema_overrides={"currency_digits": pl.Int32, "period_days": pl.Int32,
                                                       "full_period_days": pl.Int32, "tax_rate": WORK})
    lines = pl.DataFrame([{
        "invoice_id": f"i{n}", "line_position": 0, "line_type": "usage", "billable_item": "api_calls",
        "description": "API calls", "quantity": Decimal(1), "amount": draw(cents), "details": [],
    } for n in range(count)], schema={"invoice_id": pl.String, "line_position": pl.Int32, "line_type": pl.String,
                                      "billable_item": pl.String, "description": pl.String, "quantity": WORK,
                                      "amount": WORK, "details": pl.List(DETAIL)})
    grants = pl.DataFrame([{
        "grant_id": f"g{n}", "account_id": draw(st.sampled_from(["a", "b"])),
        "amount": draw(st.decimals(min_value=1, max_value=300, places=2)),
        "applies_to": draw(st.sampled_from(["all", "api_calls"])), "granted_date": START,
        "expiry_date": draw(st.one_of(st.none(), st.just(START + timedelta(days=60)))),
        "priority": draw(st.integers(min_value=0, max_value=2)),
    } for n in range(draw(st.integers(min_value=0, max_value=3)))],
        schema={"grant_id": pl.String, "account_id": pl.String, "amount": WORK, "applies_to": pl.String,
                "granted_date": pl.Date, "expiry_date": pl.Date, "priority": pl.Int32})
    topups = pl.DataFrame([{"account_id": draw(st.sampled_from(["a", "b"])),
                            "amount": draw(st.decimals(min_value=1, max_value=500, places=2)),
                            "topup_date": START + timedelta(days=draw(st.integers(min_value=0, max_value=150)))}
                           for _ in range(draw(st.integers(min_value=0, max_value=3)))],
                          schema={"account_id": pl.String, "amount": WORK, "topup_date": pl.Date})
    return invoices, lines, grants, topups


@settings(max_examples=40, deadline=None)
@given(scenario=billing())
def test_totals_are_the_sums_of_lines_credits_charges_and_wallet(catalog, scenario):
    invoices, lines, grants, topups = scenario
    nothing = pl.DataFrame(schema={"grant_id": pl.String, "account_id": pl.String, "amount": WORK})
    result = assemble(invoices, lines, pl.DataFrame(schema={"invoice_id": pl.String, "meter_name": pl.String,
                                                            "quantity": WORK, "event_count": pl.Int64}),
                      pl.DataFrame({"account_id": ["a", "b"]}),
                      Ledgers(grants=grants, credits_drawn=nothing.select("grant_id", "amount"), topups=topups,
                              wallet_drawn=nothing.select("account_id", "amount")),
                      catalog)
    line_sums = dict(result.lines.group_by("invoice_id").agg(pl.col("amount").sum()).iter_rows())
    charge_sums = dict(result.charges.group_by("invoice_id").agg(pl.col("amount").sum()).iter_rows())
    draw_sums = dict(result.credit_draws.group_by("invoice_id").agg(pl.col("amount").sum()).iter_rows())
    for row in result.headers.iter_rows(named=True):
        invoice_id = row["invoice_id"]
        assert row["subtotal_amount"] == line_sums[invoice_id] >= 100  # the commitment tops it up
        assert row["credits_applied_amount"] == draw_sums.get(invoice_id, 0) <= row["subtotal_amount"]
        assert row["custom_charges_amount"] == charge_sums[invoice_id]
        assert row["total_amount"] == row["subtotal_amount"] - row["credits_applied_amount"] \
            + row["custom_charges_amount"]
        assert 0 <= row["wallet_applied_amount"] <= max(row["total_amount"], 0)
        assert row["amount_due_amount"] == row["total_amount"] - row["wallet_applied_amount"]
        for value in (row["subtotal_amount"], row["total_amount"], row["amount_due_amount"]):
            assert value == value.quantize(Decimal("0.01"))  # money stays in cents after every step
    # no money created: all grants together never paid more than they held
    assert result.credit_draws["amount"].sum() <= (grants["amount"].sum() if grants.height else 0)
