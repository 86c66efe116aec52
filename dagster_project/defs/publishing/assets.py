"""Publishing: invoice documents as files, after the billing marts and their tests passed."""

import dagster as dg

from dagster_project.defs.partitions import billing_months, month_range
from dagster_project.defs.progress import report
from dagster_project.defs.resources import InvoicesDirectoryResource, WarehouseResource
from dagster_project.invoicing.publishing import publish


@dg.asset(group_name="publishing", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          deps=[dg.AssetKey(["marts", "fct_invoices"]), dg.AssetKey(["marts", "fct_invoice_lines"]),
                dg.AssetKey(["marts", "event_pipeline_log"])],
          description="<account_id>/<period_start>_<kind>.json and .html under TALLY_INVOICES_DIR.")
def published_invoices(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       invoices_dir: InvoicesDirectoryResource) -> dg.MaterializeResult:
    first, last = month_range(context)
    with warehouse.connect(read_only=True) as con:
        documents = con.execute("select invoice_id, document_json, document_html from billing.invoices "
                                "where billing_month between ? and ? order by invoice_id", [first, last]).fetchall()
        existing = {row[0] for row in con.execute("select invoice_id from billing.invoices").fetchall()}
    published = publish(invoices_dir.directory, documents, existing)
    report(context, f"publishing: {len(documents)} invoices to {invoices_dir.directory} ({published.written} files "
                    f"written, {published.unchanged} unchanged, {published.removed} removed)")
    return dg.MaterializeResult(metadata={"invoices": len(documents), "files_written": published.written,
                                          "files_unchanged": published.unchanged, "files_removed": published.removed,
                                          "directory": str(invoices_dir.directory)})
