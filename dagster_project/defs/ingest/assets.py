"""Ingestion: the pricing catalog, reference CSVs and new event lines into the warehouse."""

import json

import dagster as dg
import pyarrow as pa

from dagster_project import billing_store as store
from dagster_project.catalog.tables import catalog_tables
from dagster_project.defs.progress import progress
from dagster_project.defs.resources import DataDirectoryResource, PricingCatalogResource, WarehouseResource
from dagster_project.ingestion.events import load_new_events
from dagster_project.ingestion.reference_data import (
    DataDirectoryError,
    ReferenceDataError,
    check_data_directory,
    check_no_account_removed,
    read_reference_data,
    reference_fingerprint,
    write_reference_data,
)
from dagster_project.warehouse import BILLING_STATE_SQL, ensure_tables, replace_table, scalar

GROUP = "ingest"
OWNERS = ["team:billing"]


@dg.asset(group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS,
          description="pricing_config/ validated (pydantic) and written to config.* tables for dbt to join.")
def pricing_catalog(context: dg.AssetExecutionContext, catalog: PricingCatalogResource,
                    warehouse: WarehouseResource) -> dg.MaterializeResult:
    with progress(context, "catalog") as stage:
        loaded = catalog.load()
        tables = catalog_tables(loaded)
        with warehouse.connect() as con:
            ensure_tables(con)
            for name, table in tables.items():
                replace_table(con, f"config.{name}", table)
        stage.done(f"{len(loaded.price_plans)} price plans, {len(loaded.usage_meters)} usage meters, "
                   f"{len(loaded.billable_items)} billable items")
    return dg.MaterializeResult(metadata={
        "price_plans": len(loaded.price_plans), "usage_meters": len(loaded.usage_meters),
        "billable_items": len(loaded.billable_items), "fingerprint": loaded.fingerprint,
        "dagster/row_count": sum(table.num_rows for table in tables.values())})


@dg.asset(group_name=GROUP, deps=[pricing_catalog], kinds={"python", "duckdb"}, owners=OWNERS,
          description="Customers, accounts, plan assignments, licenses, credit grants and top-ups (raw.*), checked "
                      "row by row: a bad row holds back its own account, everyone else is billed.")
def reference_data(context: dg.AssetExecutionContext, catalog: PricingCatalogResource,
                   data: DataDirectoryResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    loaded = catalog.load()
    with progress(context, "reference data") as stage:
        try:
            check_data_directory(data.directory)
        except DataDirectoryError as exc:
            raise dg.Failure(description=str(exc)) from None
        fingerprint = reference_fingerprint(data.directory, loaded.fingerprint)
        with warehouse.connect() as con:
            ensure_tables(con)
            last = con.execute("select summary_json from raw.reference_load where fingerprint = ?",
                               [fingerprint]).fetchall()
        if last:
            summary = json.loads(last[0][0])
            stage.done(f"unchanged since the last load ({summary['message']})")
            return dg.MaterializeResult(metadata={**summary["metadata"], "unchanged": True})
        try:
            tables = read_reference_data(data.directory, loaded)
        except ReferenceDataError as exc:
            raise dg.Failure(description="\n".join(exc.problems)) from None
        counts = {name: len(tables.clean_rows(name)) for name in tables.tables}
        held = tables.held
        message = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
        if tables.problems:
            message += f"; {len(tables.problems)} row problem(s), {len(held)} account(s) held back"
        metadata = {**counts, "problems": len(tables.problems), "held_accounts": len(held),
                    "dagster/row_count": sum(counts.values())}
        with warehouse.connect() as con:
            try:
                check_no_account_removed(con, tables)
            except ReferenceDataError as exc:
                raise dg.Failure(description="\n".join(exc.problems)) from None
            write_reference_data(con, tables)
            con.execute("delete from raw.reference_load")
            con.execute("insert into raw.reference_load values (?, ?)",
                        [fingerprint, json.dumps({"message": message, "metadata": metadata})])
        stage.done(message)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(group_name=GROUP, deps=[reference_data], kinds={"python", "duckdb"}, owners=OWNERS,
          description="New event lines loaded once each, in file-name then line order (files that grew: their new "
                      "lines), with duplicate ids marked against everything already loaded.")
def raw_events(context: dg.AssetExecutionContext, data: DataDirectoryResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    with progress(context, "events") as stage:
        with warehouse.connect() as con:
            ensure_tables(con)
            loaded = load_new_events(con, data.events_directory)
            replace_table(con, "raw.event_load_problems",
                          pa.table({"problem": pa.array(loaded.problems + loaded.notes, pa.string()),
                                    "is_error": pa.array([True] * len(loaded.problems) + [False] * len(loaded.notes),
                                                         pa.bool_())}))
            total = scalar(con, "select count(*) from raw.events")
        if loaded.batch_id is None:
            message = f"nothing new ({total:,} events loaded before)"
        else:
            appended = sum(1 for load in loaded.loads if load.appended)
            files = f"{len(loaded.loads) - appended} new file(s)"
            if appended:
                files += f" and {appended} grown file(s)"
            message = (f"loaded {loaded.events_loaded:,} events from {files} as batch {loaded.batch_id} "
                       f"({loaded.duplicates:,} duplicate ids); {total:,} in all")
        if loaded.problems:
            message += f"; {len(loaded.problems)} file(s) refused"
        stage.done(message)
    return dg.MaterializeResult(metadata={
        "batch_id": loaded.batch_id, "files_loaded": len(loaded.loads), "events_loaded": loaded.events_loaded,
        "duplicates": loaded.duplicates, "events_total": total, "files_refused": len(loaded.problems),
        "dagster/row_count": total})


@dg.asset(group_name=GROUP, kinds={"python", "duckdb"}, owners=OWNERS,
          description="What earlier runs left that metering reads (billing.final_cycles and the last metering "
                      "checkpoint), copied at the start of the run; final invoices of a run that failed before it "
                      "committed are discarded first.")
def billing_state(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with progress(context, "billing state") as stage, warehouse.connect() as con:
        ensure_tables(con)
        discarded = store.discard_uncommitted(con)
        con.execute(BILLING_STATE_SQL)
        finals = scalar(con, "select count(*) from billing.final_cycles")
        checkpoint = scalar(con, "select max(through_batch) from billing.last_metering_checkpoint")
        message = f"{finals:,} final cycle(s); metered through batch {checkpoint or 0}"
        if discarded:
            message += f"; {discarded} final invoice(s) of a failed run discarded"
        stage.done(message)
    return dg.MaterializeResult(metadata={"final_cycles": finals, "metered_through_batch": checkpoint,
                                          "discarded_uncommitted": discarded, "dagster/row_count": finals})
