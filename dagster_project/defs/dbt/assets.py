"""dbt models as Dagster assets: metering before rating, billing marts after invoicing.

Two selections of one dbt project, because the billing marts read what invoicing writes: one
graph, staging -> intermediate -> metering marts -> rating -> invoicing -> billing marts.
"""

import json
import os

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from dagster_project.defs.dbt.project import dbt_project, ensure_manifest, translator
from dagster_project.defs.partitions import dbt_vars
from dagster_project.defs.progress import report
from dagster_project.defs.resources import BillingClock, WarehouseResource

MANIFEST = ensure_manifest()


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
           billing_clock: BillingClock, step: str):
    # dbt runs in a subprocess and reads the warehouse path from the environment (profiles.yml).
    os.environ["TALLY_WAREHOUSE"] = str(warehouse.absolute_path)
    as_of = billing_clock.today()
    report(context, f"dbt build as of {as_of}")
    # One target folder per step, overwritten by every run (dagster-dbt would otherwise add a new
    # one per invocation): target/<step>/compiled shows the SQL of the latest run.
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars(as_of))], context=context,
                       target_path=dbt_project.target_path / step).stream()


@dbt_assets(manifest=MANIFEST, project=dbt_project, exclude="tag:billing", name="dbt_metering",
            dagster_dbt_translator=translator)
def dbt_metering(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                 billing_clock: BillingClock):
    """Staging, intermediate and metering marts: events validated, placed in cycles, metered."""
    yield from _build(context, dbt, warehouse, billing_clock, "metering")


@dbt_assets(manifest=MANIFEST, project=dbt_project, select="tag:billing", name="dbt_billing_marts",
            dagster_dbt_translator=translator)
def dbt_billing_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource,
                      billing_clock: BillingClock):
    """Invoice marts and the event pipeline log, with their reconciliation tests."""
    yield from _build(context, dbt, warehouse, billing_clock, "billing_marts")
