"""A Great Expectations suite over the invoices: shape, statuses, numbers and signs.

The identities between amounts (total = subtotal - credits + charges, ...) are SQL checks and dbt
tests; this suite guards what the documents must look like, value by value. Money stays Decimal.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass(frozen=True)
class SuiteResult:
    success: bool
    failures: list[str]
    evaluated: int


def validate_invoices(invoices: pd.DataFrame, *number_prefixes: str) -> SuiteResult:
    """number_prefixes: those of the numbering series (invoices, credit notes, debit notes)."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    batch_definition = (context.data_sources.add_pandas("tally").add_dataframe_asset("invoices")
                        .add_batch_definition_whole_dataframe("all_invoices"))
    suite = gx.ExpectationSuite(name="invoices")
    for expectation in _expectations(number_prefixes):
        suite.add_expectation(expectation)
    result = batch_definition.get_batch(batch_parameters={"dataframe": invoices}).validate(suite)
    failures = [f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column')})"
                for r in result.results if not r.success]
    return SuiteResult(success=result.success, failures=failures, evaluated=len(result.results))


def _expectations(number_prefixes: tuple[str, ...]) -> list:
    import great_expectations as gx

    e = gx.expectations
    money = ("subtotal_amount", "credits_applied_amount", "custom_charges_amount", "total_amount",
             "wallet_applied_amount", "amount_due_amount")
    return [
        e.ExpectColumnValuesToBeUnique(column="invoice_id"),
        e.ExpectColumnValuesToNotBeNull(column="invoice_id"),
        # an invoice issued by a void, or a note, is named after a number: ..._replaces_<number>, ..._<kind>_<number>
        e.ExpectColumnValuesToMatchRegex(
            column="invoice_id",
            regex=r"^[^/]+/\d{4}-\d{2}-\d{2}_(?:(?:cycle|opening)(?:_replaces_[^/]+)?|(?:credit|debit)_note_[^/]+)$"),
        e.ExpectColumnValuesToBeInSet(column="status", value_set=["draft", "final"]),
        e.ExpectColumnValuesToBeInSet(column="kind", value_set=["cycle", "opening", "credit_note", "debit_note"]),
        e.ExpectColumnValuesToMatchRegex(column="currency", regex=r"^[A-Z]{3}$"),
        e.ExpectColumnValuesToMatchRegex(
            column="invoice_number",
            regex=rf"^(?:{'|'.join(re.escape(prefix) for prefix in number_prefixes)})-[0-9-]+$"),
        *[e.ExpectColumnValuesToNotBeNull(column=column) for column in money],
        e.ExpectColumnValuesToBeBetween(column="credits_applied_amount", min_value=0),
        e.ExpectColumnValuesToBeBetween(column="wallet_applied_amount", min_value=0),
    ]
