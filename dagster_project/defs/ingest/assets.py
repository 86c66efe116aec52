"""Ingestion: the pricing catalog, reference CSVs and new event files into the warehouse."""

import dagster as dg
import pyarrow as pa

from dagster_project.catalog.tables import catalog_tables
from dagster_project.defs.progress import report
from dagster_project.defs.resources import DataDirectoryResource, PricingCatalogResource, WarehouseResource
from dagster_project.ingestion.events import load_new_events
from dagster_project.ingestion.reference_data import ReferenceDataError, read_reference_data, write_reference_data
from dagster_project.warehouse import ensure_tables, scalar

GROUP = "ingest"


def _replace_table(con, name: str, table: pa.Table) -> None:
    con.register("incoming_table", table)
    try:
        con.execute(f"create or replace table {name} as select * from incoming_table")
    finally:
        con.unregister("incoming_table")


@dg.asset(group_name=GROUP, description="pricing_config/ validated and written to config.* tables.")
def pricing_catalog(context: dg.AssetExecutionContext, catalog: PricingCatalogResource,
                    warehouse: WarehouseResource) -> dg.MaterializeResult:
    loaded = catalog.load()
    with warehouse.connect() as con:
        ensure_tables(con)
        for name, table in catalog_tables(loaded).items():
            _replace_table(con, f"config.{name}", table)
    report(context, f"catalog: {len(loaded.price_plans)} price plans, {len(loaded.usage_meters)} usage meters, "
                     f"{len(loaded.billable_items)} billable items")
    return dg.MaterializeResult(metadata={
        "price_plans": len(loaded.price_plans), "usage_meters": len(loaded.usage_meters),
        "billable_items": len(loaded.billable_items), "fingerprint": loaded.fingerprint})


@dg.asset(group_name=GROUP, deps=[pricing_catalog],
          description="Customers, accounts, plan assignments, licenses, credit grants and top-ups (raw.*).")
def reference_data(context: dg.AssetExecutionContext, catalog: PricingCatalogResource,
                   data: DataDirectoryResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    try:
        tables = read_reference_data(data.directory, catalog.load())
    except ReferenceDataError as exc:
        raise dg.Failure(description=str(exc)) from exc
    with warehouse.connect() as con:
        ensure_tables(con)
        write_reference_data(con, tables)
    counts = {name: len(table.rows) for name, table in tables.items()}
    report(context, "reference data: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    return dg.MaterializeResult(metadata=counts)


@dg.asset(group_name=GROUP, description="New event files loaded once each, in file-name then line order, "
                                        "with duplicates marked against everything already loaded.")
def raw_events(context: dg.AssetExecutionContext, data: DataDirectoryResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        ensure_tables(con)
        loaded = load_new_events(con, data.events_directory)
        total = scalar(con, "select count(*) from raw.events")
    if loaded.batch_id is None:
        report(context, f"events: no new files ({total} events loaded before)")
    else:
        report(context, f"events: loaded {loaded.events_loaded} events from {len(loaded.files)} new file(s) "
                        f"as batch {loaded.batch_id} ({loaded.duplicates} duplicate ids); {total} in all")
    return dg.MaterializeResult(metadata={
        "batch_id": loaded.batch_id, "files_loaded": len(loaded.files), "events_loaded": loaded.events_loaded,
        "duplicates": loaded.duplicates, "events_total": total})
