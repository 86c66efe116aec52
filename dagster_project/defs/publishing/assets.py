"""Publishing: the run commits its final invoices, then their documents are written as files.

This is the last step: it runs only when invoicing, the blocking checks and the billing marts'
tests all passed, so numbering, finalization and publishing succeed or fail together.
"""

from pathlib import Path

import dagster as dg

from dagster_project import billing_store as store
from dagster_project import run_inputs
from dagster_project import warehouse as warehouse_tables
from dagster_project.defs.partitions import INPUTS_TAG, billing_months, month_range
from dagster_project.defs.progress import progress
from dagster_project.defs.resources import InvoicesDirectoryResource, PricingCatalogResource, WarehouseResource
from dagster_project.invoicing.documents import html_rendering
from dagster_project.invoicing.pdf import PdfReport, publish_pdfs, rendering_fingerprint
from dagster_project.invoicing.publishing import UnsafePath, check_paths, documents_on_disk, publish
from dagster_project.publication import publication_for
from dagster_project.publication import publish as publish_warehouse


@dg.asset(group_name="publishing", partitions_def=billing_months, backfill_policy=dg.BackfillPolicy.single_run(),
          kinds={"python", "json", "html"}, owners=["team:billing"],
          deps=[dg.AssetKey(["marts", "fct_invoices"]), dg.AssetKey(["marts", "fct_invoice_lines"]),
                dg.AssetKey(["marts", "event_pipeline_log"])],
          description="Commits the run's final invoices (numbers and draws become permanent), then writes "
                      "<account_id>/<period_start>_<kind>.json (the stored document) and .html (rendered from "
                      "it) under TALLY_INVOICES_DIR.")
def published_invoices(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                       invoices_dir: InvoicesDirectoryResource,
                       catalog: PricingCatalogResource) -> dg.MaterializeResult:
    first, last = month_range(context)
    directory = invoices_dir.directory
    template_dir, locale = catalog.directory / "templates", catalog.load().billing.locale
    with warehouse.connect() as con:
        try:
            check_paths(directory, store.documents_to_check(con, str(directory)))  # before anything is committed
        except UnsafePath as exc:
            raise dg.Failure(description=str(exc)) from None
        committed = store.commit(con)
        stamps = store.document_stamps(con, str(directory), first, last, html_rendering(template_dir, locale))
        gone = store.gone_documents(con, str(directory))
        if gone is None:  # nothing recorded as published here: what the directory holds is listed
            gone = sorted(documents_on_disk(directory) - store.invoice_ids(con))
        with progress(context, "publishing", total=stamps.height) as stage:
            published = publish(directory, stamps, lambda ids: store.document_jsons(con, ids), gone,
                                 stamps.height == store.invoice_count(con), template_dir, locale,
                                 recorded_folders=store.published_folders(con, str(directory)),
                                 on_document=stage.advance)
            store.record_published(con, str(directory), published.rewritten, published.removed_ids)
            store.record_published_folders(con, str(directory), published.folders)
            stage.done(f"{committed:,} invoice(s) made final; {stamps.height:,} invoices to {directory} "
                       f"({published.written:,} files written, {published.unchanged:,} unchanged, "
                       f"{published.removed:,} removed)")
    return dg.MaterializeResult(metadata={"committed": committed, "invoices": stamps.height,
                                          "files_written": published.written, "files_unchanged": published.unchanged,
                                          "files_removed": published.removed, "directory": str(directory),
                                          "dagster/row_count": stamps.height})


@dg.asset(group_name="publishing", deps=[published_invoices], kinds={"python", "pdf"}, owners=["team:billing"],
          description="<account_id>/<period_start>_<kind>.pdf beside each published JSON and HTML, typeset by "
                      "Typst: a final's once, a draft's again when it or the locale or template changed. The job "
                      "tally_pdfs (`tally pdfs`), after billing: 100k PDFs take minutes of every core, which the "
                      "billing run's invoices and warehouse do not wait for.")
def invoice_pdfs(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 invoices_dir: InvoicesDirectoryResource, catalog: PricingCatalogResource) -> dg.MaterializeResult:
    directory = invoices_dir.directory
    with warehouse.connect() as con:
        warehouse_tables.ensure_tables(con)  # a warehouse billed by an earlier version lacks the newer ones
        report = render_pdfs(context, con, directory, catalog.load().billing.locale)
    return dg.MaterializeResult(metadata={"pdfs": report.documents, "rendered": report.rendered.height,
                                          "unchanged": report.unchanged, "removed": len(report.removed_ids),
                                          "directory": str(directory), "dagster/row_count": report.documents})


def render_pdfs(context: dg.AssetExecutionContext, con, directory: Path, locale: str,
                invoice_ids: list[str] | None = None) -> PdfReport:
    """Render the PDFs of the published documents (or of invoice_ids only) that are missing or out
    of date, and record them: the PDF job renders them all, e-mail delivery those it attaches."""
    stamps = store.pdf_stamps(con, str(directory), rendering_fingerprint(locale), invoice_ids)
    with progress(context, "pdfs", total=stamps.height) as stage:
        # only a pass over every document removes the PDFs of documents that are gone
        recorded = store.rendered_pdf_ids(con, str(directory)) if invoice_ids is None else set()
        report = publish_pdfs(directory, stamps, lambda ids: store.document_jsons(con, ids), store.invoice_ids(con),
                              recorded, locale, recorded_folders=store.published_folders(con, str(directory), "pdfs"),
                              covers_every_document=invoice_ids is None, on_document=stage.advance)
        store.record_rendered_pdfs(con, str(directory), report.rendered, report.removed_ids)
        store.record_published_folders(con, str(directory), report.folders, "pdfs")
        stage.done(f"{stamps.height:,} PDFs in {directory} ({report.rendered.height:,} rendered, "
                   f"{report.unchanged:,} unchanged, {len(report.removed_ids):,} removed)")
    return report


# after delivery, so that the delivery log published is the run's own
@dg.asset(group_name="publishing", deps=[published_invoices, dg.AssetKey(["marts", "delivery_log"])],
          kinds={"python", "duckdb", "parquet"}, owners=["team:billing"],
          description="The marts published for readers: Parquet files and <warehouse>.published.duckdb, a file of "
                      "views over them, swapped in atomically after a successful run (BI tools, notebooks and "
                      "`tally entitlements` read it; the pipeline's own file is never opened by readers).")
def published_warehouse(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                        invoices_dir: InvoicesDirectoryResource) -> dg.MaterializeResult:
    publication = publication_for(warehouse.absolute_path)
    with progress(context, "warehouse") as stage:
        with warehouse.connect(read_only=True) as con:
            report = publish_warehouse(con, publication)
        with warehouse.connect() as con:
            # what this run was run on (tag of `tally run`), so that running again on the same
            # inputs can stop at once; a run started elsewhere leaves no such promise
            run_inputs.record(con, context.run.tags.get(INPUTS_TAG), invoices_dir.directory, publication.database,
                              context.run_id)
        stage.done(f"published {report.tables} tables ({report.tables_written} changed) and the event log "
                   f"({report.event_partitions_written} of "
                   f"{report.event_partitions} partitions written) to {publication.database}")
    return dg.MaterializeResult(metadata={
        "database": str(publication.database), "tables": report.tables, "generation": report.generation,
        "event_partitions_written": report.event_partitions_written, "event_partitions": report.event_partitions})
