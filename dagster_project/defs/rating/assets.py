"""Rating: rate cards applied to metered quantities, for every invoice due in the billing months."""

import dagster as dg
import polars as pl

from dagster_project.defs.billing_inputs import closed_meter_usage, insert_rows, load_invoices_due
from dagster_project.defs.partitions import billing_months, month_range
from dagster_project.defs.progress import report
from dagster_project.defs.resources import BillingClock, PricingCatalogResource, WarehouseResource
from dagster_project.invoicing.billing import BillingRange, rate
from dagster_project.warehouse import frame


@dg.asset(group_name="rating", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          deps=[dg.AssetKey(["marts", "fct_meter_usage"]), dg.AssetKey(["marts", "fct_billing_cycles"]),
                dg.AssetKey(["marts", "dim_accounts"]), dg.AssetKey(["marts", "fct_license_intervals"])],
          description="Rated rate-card lines (billing.rated_lines) of every invoice issued in the months "
                      "that is not final yet; each line rounded once, with its breakdown.")
def rated_lines(context: dg.AssetExecutionContext, catalog: PricingCatalogResource, warehouse: WarehouseResource,
                billing_clock: BillingClock) -> dg.MaterializeResult:
    first, last = month_range(context)
    span = BillingRange(as_of=billing_clock.today(), first_month=first, last_month=last)
    loaded = catalog.load()
    with warehouse.connect() as con:
        due = load_invoices_due(con, loaded, span)
        usage = closed_meter_usage(con)
        licenses = frame(con, "select * from marts.fct_license_intervals")
        lines = rate(loaded, due, usage, licenses)
        lines = lines.join(due.select("invoice_id", "billing_month").collect(), on="invoice_id", how="inner")
        con.execute("delete from billing.rated_lines where billing_month between ? and ?", [first, last])
        insert_rows(con, "billing.rated_lines", lines)
    invoice_count = lines.select(pl.col("invoice_id").n_unique()).item()
    report(context, f"rating: {lines.height} lines for {invoice_count} open invoices, billing months {first:%Y-%m} "
                     f"to {last:%Y-%m}")
    return dg.MaterializeResult(metadata={"lines": lines.height, "invoices": invoice_count})
