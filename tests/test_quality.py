"""The Great Expectations suite over invoices passes on good rows and names what is wrong."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd

from dagster_project.quality.invoice_expectations import validate_invoices


def invoices(**changes) -> pd.DataFrame:
    row = {"invoice_id": "acct_a/2026-10-01_cycle", "status": "final", "kind": "cycle", "currency": "USD",
           "invoice_number": "INV-2026-000001", "period_start_date": date(2026, 10, 1),
           "subtotal_amount": Decimal("10.00"), "credits_applied_amount": Decimal("2.00"),
           "custom_charges_amount": Decimal("1.60"), "total_amount": Decimal("9.60"),
           "wallet_applied_amount": Decimal("0.00"), "amount_due_amount": Decimal("9.60")}
    draft = {**row, "invoice_id": "acct_a/2026-11-01_cycle", "status": "draft", "invoice_number": None}
    return pd.DataFrame([row | changes, draft])


def test_good_invoices_pass():
    result = validate_invoices(invoices(), "INV")
    assert result.success and result.failures == [] and result.evaluated == 15


def test_each_broken_value_is_named():
    result = validate_invoices(invoices(status="paid", currency="usd", wallet_applied_amount=Decimal("-1")), "INV")
    assert not result.success
    assert result.failures == ["expect_column_values_to_be_in_set(status)",
                               "expect_column_values_to_match_regex(currency)",
                               "expect_column_values_to_be_between(wallet_applied_amount)"]
