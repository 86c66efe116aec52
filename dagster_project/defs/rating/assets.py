"""Rating: rate cards applied to metered quantities, for every invoice due in the billing months."""

import dagster as dg
import polars as pl

from dagster_project import billing_store as store
from dagster_project.defs.partitions import billing_months, month_range
from dagster_project.defs.progress import progress
from dagster_project.defs.resources import BillingClock, PricingCatalogResource, WarehouseResource
from dagster_project.invoicing.billing import BillingRange, invoices_due, rate
from dagster_project.rating.magnitude import out_of_range


@dg.asset(group_name="rating", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"python", "polars", "duckdb"}, owners=["team:billing"],
          deps=[dg.AssetKey(["marts", "fct_meter_usage"]), dg.AssetKey(["marts", "fct_billing_cycles"]),
                dg.AssetKey(["marts", "dim_accounts"]), dg.AssetKey(["marts", "fct_license_intervals"])],
          description="The invoices due in the billing months that are not final yet (billing.due_invoices) and "
                      "their rate-card lines (billing.rated_lines), each rounded once, with its breakdown; with them "
                      "the invoices issued in place of voided ones and, with `late_events: adjust`, the final "
                      "cycles with late events re-rated. Held-back accounts are left out.")
def rated_lines(context: dg.AssetExecutionContext, catalog: PricingCatalogResource, warehouse: WarehouseResource,
                billing_clock: BillingClock) -> dg.MaterializeResult:
    first, last = month_range(context)
    span = BillingRange(as_of=billing_clock.today(), first_month=first, last_month=last)
    loaded = catalog.load()
    with progress(context, "rating") as stage, warehouse.connect() as con:
        held = store.held_accounts(con, include_rating=False)["account_id"]
        late_chains = store.late_event_chains(con) if loaded.billing.late_events == "adjust" else None
        due = (invoices_due(loaded, span, store.billing_cycles(con), store.billed_accounts(con),
                            store.stored_invoices(con), store.pending_voids(con, held.to_list()), late_chains)
               .filter(~pl.col("account_id").is_in(held.implode())).collect())
        usage, licenses = store.closed_meter_usage(con), store.license_intervals(con)
        holds = out_of_range(loaded, due, usage, licenses)
        due = due.filter(~pl.col("account_id").is_in(holds["account_id"].implode()))
        lines = rate(loaded, due.lazy(), usage, licenses).join(due.select("invoice_id", "billing_month"),
                                                                on="invoice_id", how="inner")
        store.save_worklist(con, due, lines, holds, first, last)
        message = (f"{lines.height:,} lines for {due.height:,} open invoices, billing months {first:%Y-%m} to "
                   f"{last:%Y-%m}")
        if holds.height:
            message += f"; {holds.height} account(s) held back (amounts out of range)"
        stage.done(message)
    return dg.MaterializeResult(metadata={"lines": lines.height, "invoices": due.height, "held_back": holds.height,
                                          "dagster/row_count": lines.height})
