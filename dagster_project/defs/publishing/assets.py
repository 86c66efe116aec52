"""Publishing: the run commits its final invoices, then their documents are written as files.

This is the last step: it runs only when invoicing, the blocking checks and the billing marts'
tests all passed, so numbering, finalization and publishing succeed or fail together.
"""

import dagster as dg

from dagster_project import billing_store as store
from dagster_project.defs.partitions import billing_months, month_range
from dagster_project.defs.progress import progress
from dagster_project.defs.resources import InvoicesDirectoryResource, WarehouseResource
from dagster_project.invoicing.publishing import UnsafePath, check_paths, publish


@dg.asset(group_name="publishing", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"python", "json", "html"}, owners=["team:billing"],
          deps=[dg.AssetKey(["marts", "fct_invoices"]), dg.AssetKey(["marts", "fct_invoice_lines"]),
                dg.AssetKey(["marts", "event_pipeline_log"])],
          description="Commits the run's final invoices (numbers and draws become permanent), then writes "
                      "<account_id>/<period_start>_<kind>.json and .html under TALLY_INVOICES_DIR.")
def published_invoices(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       invoices_dir: InvoicesDirectoryResource) -> dg.MaterializeResult:
    first, last = month_range(context)
    directory = invoices_dir.directory
    with warehouse.connect() as con:
        documents = store.documents(con, first, last)
        existing = store.invoice_ids(con)
        try:
            check_paths(directory, existing)  # before anything is committed or written
        except UnsafePath as exc:
            raise dg.Failure(description=str(exc)) from None
        committed = store.commit(con)
    with progress(context, "publishing", total=len(documents)) as stage:
        published = publish(directory, documents, existing, on_document=stage.advance)
        stage.done(f"{committed:,} invoice(s) made final; {len(documents):,} invoices to {directory} "
                   f"({published.written:,} files written, {published.unchanged:,} unchanged, "
                   f"{published.removed:,} removed)")
    return dg.MaterializeResult(metadata={"committed": committed, "invoices": len(documents),
                                          "files_written": published.written, "files_unchanged": published.unchanged,
                                          "files_removed": published.removed, "directory": str(directory),
                                          "dagster/row_count": len(documents)})
