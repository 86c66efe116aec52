"""dbt models as Dagster assets: metering before rating, billing marts after invoicing.

Two selections of one dbt project, because the billing marts read what invoicing writes: one
graph, staging -> intermediate -> metering marts -> rating -> invoicing -> billing marts.
"""

import dagster as dg
from dagster_dbt import dbt_assets

from dagster_project.defs.dbt.project import MANIFEST, TARGET_DIR, dbt_project, translator
from dagster_project.defs.dbt.runner import dbt_build
from dagster_project.defs.progress import progress
from dagster_project.defs.resources import BillingClock, WarehouseResource

METERING_EXCLUDE = "tag:billing"
BILLING_SELECT = "tag:billing"


def _build(context: dg.AssetExecutionContext, warehouse: WarehouseResource, billing_clock: BillingClock,
           step: str, select: str | None = None, exclude: str | None = None):
    as_of = billing_clock.today()
    nodes = len(context.selected_output_names) + len(context.selected_asset_check_keys)
    with progress(context, f"dbt {step}", total=nodes) as stage:
        # One target folder per step, overwritten by every run: target/<step>/compiled shows the
        # SQL of the latest run, the meters' SQL among it.
        result = dbt_build(context, warehouse.absolute_path, as_of.isoformat(), select, exclude,
                           target_path=TARGET_DIR / step, verbose=stage.verbose,
                           on_node_done=lambda name, status: stage.advance())
        yield from result.events
        if not result.success:
            raise dg.Failure(description="\n".join(result.failures),
                             metadata={"failures": dg.MetadataValue.text("\n".join(result.failures))})
        stage.done(f"{len(result.events)} models and tests passed")


@dbt_assets(manifest=MANIFEST, project=dbt_project, exclude=METERING_EXCLUDE, name="dbt_metering",
            dagster_dbt_translator=translator)
def dbt_metering(context: dg.AssetExecutionContext, warehouse: WarehouseResource, billing_clock: BillingClock):
    """Staging, intermediate and metering marts: events validated, placed in cycles, metered."""
    yield from _build(context, warehouse, billing_clock, "metering", exclude=METERING_EXCLUDE)


@dbt_assets(manifest=MANIFEST, project=dbt_project, select=BILLING_SELECT, name="dbt_billing_marts",
            dagster_dbt_translator=translator)
def dbt_billing_marts(context: dg.AssetExecutionContext, warehouse: WarehouseResource, billing_clock: BillingClock):
    """Invoice marts and the event pipeline log, with their reconciliation tests."""
    yield from _build(context, warehouse, billing_clock, "billing_marts", select=BILLING_SELECT)
