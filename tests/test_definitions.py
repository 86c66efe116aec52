"""The Dagster definitions load, form one graph, describe themselves, and map a run's date onto
billing-month partitions."""
from __future__ import annotations

from datetime import date

import dagster as dg

from dagster_project.catalog import load_catalog
from dagster_project.definitions import PIPELINE_JOB, defs
from dagster_project.defs.partitions import billing_range, last_billing_month, month_keys, run_config, run_tags
from tests.conftest import CASES

PYTHON_ASSETS = ("pricing_catalog", "reference_data", "raw_events", "rated_lines", "invoices", "published_invoices")


def test_definitions_load_with_one_lineage_graph():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"pricing_catalog", "reference_data", "raw_events", "marts/fct_meter_usage", "rated_lines", "invoices",
            "marts/fct_invoices", "marts/event_pipeline_log", "published_invoices"} <= keys
    # rating reads the metering marts, the billing marts read invoicing, publishing waits for them
    assert dg.AssetKey(["marts", "fct_meter_usage"]) in graph.get(dg.AssetKey("rated_lines")).parent_keys
    assert dg.AssetKey("invoices") in graph.get(dg.AssetKey(["staging", "stg_billing__invoices"])).parent_keys
    assert dg.AssetKey(["marts", "fct_invoices"]) in graph.get(dg.AssetKey("published_invoices")).parent_keys
    assert graph.get(dg.AssetKey(["staging", "stg_raw__events"])).parent_keys == {dg.AssetKey("raw_events")}


def test_python_assets_carry_kinds_owners_descriptions():
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    for name in PYTHON_ASSETS:
        spec = specs[name]
        assert spec.description and len(spec.description) > 40, name
        assert spec.owners == ["team:billing"], name
        assert "python" in spec.kinds and ("duckdb" in spec.kinds or "json" in spec.kinds), name
    assert "polars" in specs["rated_lines"].kinds
    assert "dbt" in specs["marts/fct_invoices"].kinds


def test_the_job_schedule_and_sensor_exist():
    job = defs.resolve_job_def(PIPELINE_JOB)
    assert job.partitions_def is not None
    assert defs.resolve_schedule_def("daily_billing").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("new_event_files").job_name == PIPELINE_JOB
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"invoice_totals_reconcile", "invoice_numbers_gapless", "invoice_expectations"} <= checks


def test_a_run_bills_the_months_from_the_first_assignment_to_as_of_plus_grace():
    case = CASES / "07_grace_and_late_events"
    catalog = load_catalog(case / "pricing_config")  # grace period 3 days, assignment from 2026-10-01
    assert last_billing_month(date(2026, 11, 10), catalog) == date(2026, 11, 1)
    # a cycle closed on Nov 29 is issued on Dec 2: the December partition must be in the run
    assert last_billing_month(date(2026, 11, 29), catalog) == date(2026, 12, 1)
    keys = billing_range(case / "data", date(2026, 11, 29), catalog)
    assert keys == ["2026-10", "2026-11", "2026-12"]
    assert run_tags(keys) == {"dagster/asset_partition_range_start": "2026-10",
                              "dagster/asset_partition_range_end": "2026-12"}
    assert run_config(date(2026, 11, 29)) == {"resources": {"billing_clock": {"config": {"as_of": "2026-11-29"}}}}
    assert month_keys(date(2026, 11, 15), date(2027, 2, 1)) == ["2026-11", "2026-12", "2027-01", "2027-02"]


def test_dbt_sends_no_usage_events():
    """dbt reports every invocation to dbt Labs unless its project says not to (dbt_project.yml's
    flags): the pipeline's own in-process invocation must find it off."""
    from dbt import tracking
    from dbt.cli.main import dbtRunner

    from dagster_project.defs.dbt.project import dbt_project
    from dagster_project.defs.dbt.runner import manifest_for

    outcome = dbtRunner(manifest=manifest_for("tally")).invoke(
        ["ls", "--project-dir", str(dbt_project.project_dir), "--profiles-dir", str(dbt_project.profiles_dir),
         "--resource-type", "model", "--quiet", "--log-level", "none"])
    assert outcome.success and "tally.marts.metering.fct_meter_usage" in outcome.result
    assert tracking.active_user is not None and tracking.active_user.do_not_track


def test_objects_built_to_last_are_built_without_the_cyclic_collector_and_frozen():
    import gc

    from dagster_project.long_lived import long_lived_objects

    frozen_before = gc.get_freeze_count()
    collections_before = sum(generation["collections"] for generation in gc.get_stats())
    with long_lived_objects():
        assert not gc.isenabled()
        with long_lived_objects():  # nested: the outer block keeps the collector paused
            pass
        assert not gc.isenabled()
        kept = [[index] for index in range(50_000)]  # enough allocations for dozens of collections
    assert gc.isenabled()
    assert sum(generation["collections"] for generation in gc.get_stats()) == collections_before
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    gc.disable()
    try:
        with long_lived_objects():
            pass
        assert not gc.isenabled()  # a collector paused before stays paused
    finally:
        gc.enable()
