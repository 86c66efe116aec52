"""Checks that guard money: a failure blocks everything after invoicing, so nothing is committed
or published (blocking=True)."""

import dagster as dg

from dagster_project.defs.invoicing.assets import invoices
from dagster_project.defs.resources import PricingCatalogResource, WarehouseResource

_UNRECONCILED = """
with line_sums as (
    select invoice_id, sum(amount) as lines_amount from billing.invoice_lines group by invoice_id
),
charge_sums as (
    select invoice_id, sum(amount) as charges_amount from billing.invoice_custom_charges group by invoice_id
)
select i.invoice_id
from billing.invoices i
left join line_sums l on l.invoice_id = i.invoice_id
left join charge_sums c on c.invoice_id = i.invoice_id
where i.subtotal_amount <> coalesce(l.lines_amount, 0)
   or i.custom_charges_amount <> coalesce(c.charges_amount, 0)
   or i.total_amount <> i.subtotal_amount - i.credits_applied_amount + i.custom_charges_amount
   or i.amount_due_amount <> i.total_amount - i.wallet_applied_amount
order by 1
"""

_NUMBERING_PROBLEMS = """
with finals as (
    select case when kind in ('credit_note', 'debit_note') then kind else 'invoice' end as numbering_series,
           numbering_period, invoice_sequence, invoice_number
    from billing.invoices where status = 'final'
)
select 'final invoice without a number' from finals where invoice_number is null
union all
select 'duplicate number ' || invoice_number from finals group by invoice_number having count(*) > 1
union all
select 'gap in ' || numbering_series || ' numbering period ' || numbering_period
from finals group by numbering_series, numbering_period having max(invoice_sequence) <> count(*)
"""


@dg.asset_check(asset=invoices, blocking=True,
                description="Every invoice's subtotal is the sum of its lines, and total and amount due follow.")
def invoice_totals_reconcile(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        failing = [row[0] for row in con.execute(_UNRECONCILED).fetchall()]
    return dg.AssetCheckResult(passed=not failing, metadata={"unreconciled": len(failing),
                                                             "examples": ", ".join(failing[:10])})


@dg.asset_check(asset=invoices, blocking=True,
                description="Final invoices and notes (committed and of this run) are numbered, each number once, "
                            "without gaps in a numbering period of each series (invoices, credit notes, debit notes), "
                            "whatever prefix they were given with.")
def invoice_numbers_gapless(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        problems = [row[0] for row in con.execute(_NUMBERING_PROBLEMS).fetchall()]
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": "; ".join(problems[:10]) or "none"})


@dg.asset_check(asset=invoices, blocking=True,
                description="Great Expectations suite over the invoices and notes this run makes final, before they "
                            "become permanent: ids, statuses, kinds, currencies, number format, no missing amounts, "
                            "credits and wallet never negative. Committed finals were checked when they were made.")
def invoice_expectations(catalog: PricingCatalogResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        rows = con.sql("select * exclude (document_json) from billing.invoices "
                       "where status = 'final' and not is_committed").df()
    if rows.empty:
        return dg.AssetCheckResult(passed=True, metadata={"expectations": 0, "failed": "none (nothing to finalize)"})
    from dagster_project.quality.invoice_expectations import validate_invoices

    settings = catalog.load().billing
    result = validate_invoices(rows, settings.invoice_numbering.prefix, settings.credit_note_numbering.prefix,
                               settings.debit_note_numbering.prefix)
    return dg.AssetCheckResult(passed=result.success, metadata={
        "expectations": result.evaluated, "failed": ", ".join(result.failures) or "none"})
