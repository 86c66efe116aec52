"""Invoicing: totals, drafts and finals, numbers and documents for the billing months.

New finals are written uncommitted: the blocking checks, the billing marts' tests and publishing
all come before the run commits them (billing_store.commit), so a failed run gives no number.
"""

import dagster as dg
import polars as pl

from dagster_project import billing_store as store
from dagster_project.defs.partitions import billing_months, month_range
from dagster_project.defs.progress import progress
from dagster_project.defs.rating.assets import rated_lines
from dagster_project.defs.resources import BillingClock, PricingCatalogResource, WarehouseResource
from dagster_project.invoicing.billing import BillingRange, issue
from dagster_project.invoicing.kinds import NOTE_KINDS


@dg.asset(group_name="invoicing", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"python", "polars", "duckdb"}, owners=["team:billing"],
          deps=[rated_lines, dg.AssetKey(["marts", "dim_customers"]), dg.AssetKey(["marts", "dim_credit_grants"]),
                dg.AssetKey(["marts", "fct_wallet_topups"])],
          description="Invoices issued in the billing months (billing.invoices, lines, custom charges, credit and "
                      "wallet draws, rule evaluations): drafts are recomputed; new finals are numbered and become "
                      "permanent when the run commits, after every check. Voids and late events are corrected with "
                      "credit and debit notes, numbered in their own series.")
def invoices(context: dg.AssetExecutionContext, catalog: PricingCatalogResource, warehouse: WarehouseResource,
             billing_clock: BillingClock) -> dg.MaterializeResult:
    first, last = month_range(context)
    span = BillingRange(as_of=billing_clock.today(), first_month=first, last_month=last)
    loaded = catalog.load()
    with progress(context, "invoicing") as stage, warehouse.connect() as con:
        stored = store.stored_invoices(con)
        held = store.held_accounts(con)["account_id"].to_list()
        due = store.due_invoices(con)
        history = None
        if span.issues_corrections:
            restated = due.filter(pl.col("restates_invoice_id").is_not_null()).select("restates_invoice_id").collect()
            history = store.invoice_history(con, store.pending_voids(con, held),
                                            restated["restates_invoice_id"].to_list())
        result = issue(loaded, span, due, store.rated_lines(con, first, last), store.closed_meter_usage(con),
                       store.account_attributes(con), store.ledgers(con, first), stored, store.customers(con),
                       store.current_batch(con), history)
        store.save_invoices(con, result, first, last, held)
        is_note = pl.col("kind").is_in(NOTE_KINDS)
        by_status = dict(result.invoices.filter(~is_note).group_by("status").len().iter_rows())
        notes = result.invoices.filter(is_note).height
        finals_before = stored.filter(pl.col("status") == "final").height
        stage.done(f"{by_status.get('draft', 0):,} draft, {by_status.get('final', 0):,} newly final "
                   f"({finals_before:,} final before, unchanged)"
                   + (f"; {notes} note(s) issued" if notes else ""))
    return dg.MaterializeResult(metadata={"drafts": by_status.get("draft", 0), "notes": notes,
                                          "newly_final": by_status.get("final", 0), "final_before": finals_before,
                                          "held_back": len(held), "dagster/row_count": result.invoices.height})
