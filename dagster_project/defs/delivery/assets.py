"""Delivery: after publishing, each committed final invoice and note goes out through the channels
of billing.yaml. A delivery that fails never fails the run: it is logged, retried by the next run
(or `tally deliver`), and listed by the CLI; billing and publishing are done by then."""

import dagster as dg

from dagster_project.defs.progress import progress, report
from dagster_project.defs.publishing.assets import published_invoices, render_pdfs
from dagster_project.defs.resources import (
    DeliveryOptions,
    InvoicesDirectoryResource,
    PricingCatalogResource,
    WarehouseResource,
)
from dagster_project.delivery import deliver, worklist


@dg.asset(group_name="delivery", deps=[published_invoices, dg.AssetKey(["marts", "dim_customers"])],
          kinds={"python", "duckdb", "email"}, owners=["team:billing"],
          description="Sends each committed final invoice and note not yet delivered through the channels of "
                      "billing.yaml `delivery` (e-mail to the customer with the PDF attached, a signed webhook "
                      "with an Idempotency-Key), logging every action in billing.delivery_actions. A failed "
                      "delivery is logged and retried later; it never fails the run. Drafts are never sent.")
def delivered_documents(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        invoices_dir: InvoicesDirectoryResource, catalog: PricingCatalogResource,
                        delivery_options: DeliveryOptions) -> dg.MaterializeResult:
    billing = catalog.load().billing
    with warehouse.connect() as con:
        work = worklist(con, billing, invoices_dir.directory, retry_exhausted=delivery_options.retry_exhausted)
        if not work.channels:
            report(context, "delivery", "no channel configured in billing.yaml: nothing sent")
            return dg.MaterializeResult(metadata={"channels": ""})
        # an e-mail carries its document's PDF: typeset here those the PDF job has not yet
        attached = [due.document.invoice_id for due in work.due if due.channel == "email" and due.skip_reason is None]
        if attached:
            render_pdfs(context, con, invoices_dir.directory, billing.locale, attached)
        with progress(context, "delivery", total=len(work.due)) as stage:
            result = deliver(con, work, context.run_id, on_delivery=stage.advance)
            stage.done(result.summary())
    return dg.MaterializeResult(metadata={"channels": ", ".join(work.channels), "delivered": result.delivered,
                                          "failed": result.failed, "skipped": result.skipped,
                                          "left_for_next_run": result.deferred})
