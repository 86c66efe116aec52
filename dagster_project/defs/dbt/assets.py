"""dbt models as Dagster assets: metering before rating, billing marts after invoicing, the
delivery log after delivery.

Three selections of one dbt project, because the billing marts read what invoicing writes and the
delivery log what delivery writes: one graph, staging -> intermediate -> metering marts -> rating
-> invoicing -> billing marts -> publishing -> delivery -> delivery log.
Metering is incremental (see metering_state.py): after its build and tests pass, the run records
its checkpoint.
"""

import dagster as dg
from dagster_dbt import dbt_assets

from dagster_project import metering_state
from dagster_project.catalog.tables import schemas_fingerprint
from dagster_project.defs.dbt.project import MANIFEST, dbt_project, translator
from dagster_project.defs.dbt.runner import dbt_build, manifest_json, run_target
from dagster_project.defs.dbt.unchanged import incremental_code_fingerprint
from dagster_project.defs.partitions import backfill_months
from dagster_project.defs.progress import progress
from dagster_project.defs.resources import BillingClock, PricingCatalogResource, RunOptions, WarehouseResource

METERING_EXCLUDE = "tag:billing tag:delivery"
BILLING_SELECT = "tag:billing"
DELIVERY_SELECT = "tag:delivery"


def _build(context: dg.AssetExecutionContext, warehouse: WarehouseResource, dbt_vars: dict, step: str,
           label: str, select: str | None = None, exclude: str | None = None, full_refresh: bool = False,
           build_all: bool = False):
    nodes = len(context.selected_output_names) + len(context.selected_asset_check_keys)
    with progress(context, f"dbt {step}", total=nodes) as stage:
        # One folder per warehouse and step, overwritten by every run: <warehouse>.dbt/<step>/compiled
        # shows the SQL of the latest run, the meters' SQL among it.
        result = dbt_build(context, warehouse.absolute_path, dbt_vars, select, exclude,
                           target_path=run_target(warehouse.absolute_path) / step, full_refresh=full_refresh,
                           build_all=build_all, verbose=stage.verbose,
                           on_node_done=lambda name, status: stage.advance())
        yield from result.events
        if not result.success:
            raise dg.Failure(description="\n".join(result.failures),
                             metadata={"failures": dg.MetadataValue.text("\n".join(result.failures))})
        kept = f"; {result.unchanged} unchanged since they were built, not rebuilt" if result.unchanged else ""
        stage.done(label.format(nodes=len(result.events)) + kept)


@dbt_assets(manifest=MANIFEST, project=dbt_project, exclude=METERING_EXCLUDE, name="dbt_metering",
            dagster_dbt_translator=translator)
def dbt_metering(context: dg.AssetExecutionContext, warehouse: WarehouseResource, billing_clock: BillingClock,
                 catalog: PricingCatalogResource, options: RunOptions):
    """Staging, intermediate and metering marts: events validated, placed in cycles, metered;
    incrementally, from the last checkpoint, or from raw events on a full refresh."""
    fingerprint, code = schemas_fingerprint(catalog.load()), incremental_code_fingerprint(manifest_json())
    with warehouse.connect(read_only=True) as con:
        reason = "asked for (--full-refresh)" if options.full_refresh \
            else metering_state.full_refresh_reason(con, fingerprint, code)
        run_number = metering_state.next_run_number(con)
    dbt_vars = {"as_of": billing_clock.today().isoformat(), "metering_run": run_number}
    months = backfill_months(context)
    if months:
        dbt_vars.update(recompute_from_month=months[0], recompute_to_month=months[1])
    how = f"full refresh: {reason}" if reason else "incremental"
    yield from _build(context, warehouse, dbt_vars, "metering", "{nodes} models and tests passed (" + how + ")",
                      exclude=METERING_EXCLUDE, full_refresh=reason is not None)
    with warehouse.connect() as con:
        through_batch = metering_state.write_checkpoint(con, fingerprint, code, run_number)
    context.log.info(f"metering checkpoint: every event through batch {through_batch} is metered")


@dbt_assets(manifest=MANIFEST, project=dbt_project, select=BILLING_SELECT, name="dbt_billing_marts",
            dagster_dbt_translator=translator)
def dbt_billing_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, billing_clock: BillingClock,
                      options: RunOptions):
    """Invoice marts and the event pipeline log, with their reconciliation tests."""
    yield from _build(context, warehouse, {"as_of": billing_clock.today().isoformat()}, "billing_marts",
                      "{nodes} models and tests passed", select=BILLING_SELECT, build_all=options.full_refresh)


@dbt_assets(manifest=MANIFEST, project=dbt_project, select=DELIVERY_SELECT, name="dbt_delivery_log",
            dagster_dbt_translator=translator)
def dbt_delivery_log(context: dg.AssetExecutionContext, warehouse: WarehouseResource, options: RunOptions):
    """The delivery log mart, built after delivery so that it holds the run's own actions."""
    yield from _build(context, warehouse, {}, "delivery_log", "{nodes} models and tests passed",
                      select=DELIVERY_SELECT, build_all=options.full_refresh)
