"""The one Dagster Definitions: what `dagster dev` shows, the schedule runs, and `tally run` executes."""
from __future__ import annotations

import os
import warnings

import dagster as dg

# The documented defaults, relative to the working directory; the CLI sets absolute paths from its flags.
DEFAULT_PATHS = {
    "TALLY_CONFIG_DIR": "pricing_config",
    "TALLY_DATA_DIR": "seeds",
    "TALLY_WAREHOUSE": "warehouse/tally.duckdb",
    "TALLY_INVOICES_DIR": "invoices",
}
for _name, _default in DEFAULT_PATHS.items():
    os.environ.setdefault(_name, _default)

# Single-run backfills (BackfillPolicy) are marked beta; the warning repeats for every asset.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from dagster_project.defs.automation import (  # noqa: E402
    PDF_JOB,
    PIPELINE_JOB,
    daily_billing,
    new_event_files,
    pdfs_after_billing,
)
from dagster_project.defs.dbt.assets import dbt_billing_marts, dbt_delivery_log, dbt_metering  # noqa: E402
from dagster_project.defs.delivery.assets import delivered_documents  # noqa: E402
from dagster_project.defs.ingest.assets import (  # noqa: E402
    billing_state,
    pricing_catalog,
    raw_events,
    reference_data,
)
from dagster_project.defs.invoicing.assets import invoices  # noqa: E402
from dagster_project.defs.invoicing.checks import (  # noqa: E402
    invoice_expectations,
    invoice_numbers_gapless,
    invoice_totals_reconcile,
)
from dagster_project.defs.partitions import billing_months  # noqa: E402
from dagster_project.defs.publishing.assets import (  # noqa: E402
    invoice_pdfs,
    published_invoices,
    published_warehouse,
)
from dagster_project.defs.rating.assets import rated_lines  # noqa: E402
from dagster_project.defs.resources import (  # noqa: E402
    BillingClock,
    DataDirectoryResource,
    DeliveryOptions,
    InvoicesDirectoryResource,
    PricingCatalogResource,
    RunOptions,
    WarehouseResource,
)

# In-process: DuckDB allows one writing process per file, and every step writes the warehouse.
tally_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(invoice_pdfs),
    partitions_def=billing_months,
    executor_def=dg.in_process_executor,
    description="Load new events, meter them in dbt, rate, invoice, check and publish the billing months.",
)

# `tally deliver`: delivery again without billing, and the delivery log published
DELIVERY_JOB = "tally_delivery"
tally_delivery = dg.define_asset_job(
    DELIVERY_JOB,
    selection=dg.AssetSelection.assets(delivered_documents).downstream(),
    executor_def=dg.in_process_executor,
    description="Deliver the final invoices and notes not yet delivered, then publish the delivery log.",
)

# `tally pdfs`, and after each successful billing run in Dagster (the sensor pdfs_after_billing)
tally_pdfs = dg.define_asset_job(
    PDF_JOB,
    selection=dg.AssetSelection.assets(invoice_pdfs),
    executor_def=dg.in_process_executor,
    description="Typeset the PDFs of the published invoices and notes that have none or an outdated one.",
)

defs = dg.Definitions(
    assets=[pricing_catalog, reference_data, raw_events, billing_state, dbt_metering, rated_lines, invoices,
            dbt_billing_marts, published_invoices, invoice_pdfs, delivered_documents, dbt_delivery_log,
            published_warehouse],
    asset_checks=[invoice_totals_reconcile, invoice_numbers_gapless, invoice_expectations],
    jobs=[tally_pipeline, tally_delivery, tally_pdfs],
    schedules=[daily_billing],
    sensors=[new_event_files, pdfs_after_billing(tally_pipeline, tally_pdfs)],
    resources={
        "catalog": PricingCatalogResource(config_dir=dg.EnvVar("TALLY_CONFIG_DIR")),
        "data": DataDirectoryResource(data_dir=dg.EnvVar("TALLY_DATA_DIR")),
        "warehouse": WarehouseResource(path=dg.EnvVar("TALLY_WAREHOUSE")),
        "invoices_dir": InvoicesDirectoryResource(invoices_dir=dg.EnvVar("TALLY_INVOICES_DIR")),
        "billing_clock": BillingClock(),
        "options": RunOptions(),
        "delivery_options": DeliveryOptions(),
    },
)
