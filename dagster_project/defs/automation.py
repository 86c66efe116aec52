"""The daily schedule and the new-event-files sensor request the pipeline job; after each billing
run that succeeded, pdfs_after_billing requests the PDF job."""

import hashlib
import json
from datetime import UTC, date, datetime

import dagster as dg

from dagster_project.defs.partitions import add_billing_months, billing_range, run_config, run_tags
from dagster_project.defs.resources import DataDirectoryResource, PricingCatalogResource
from dagster_project.ingestion.events import discover_event_files

PIPELINE_JOB = "tally_pipeline"
PDF_JOB = "tally_pdfs"


def _run_request(instance: dg.DagsterInstance, catalog: PricingCatalogResource, data: DataDirectoryResource,
                 as_of: date, run_key: str | None = None):
    try:
        loaded = catalog.load()
    except dg.Failure as exc:
        return dg.SkipReason(f"pricing_config/ is invalid, nothing requested:\n{exc.description}")
    keys = billing_range(data.directory, as_of, loaded)
    add_billing_months(instance, keys)
    return dg.RunRequest(run_key=run_key, tags=run_tags(keys), run_config=run_config(as_of))


@dg.schedule(cron_schedule="0 2 * * *", job_name=PIPELINE_JOB, execution_timezone="UTC",
             description="Every day at 02:00 UTC: load new events, meter, and bill every month up to today.")
def daily_billing(context: dg.ScheduleEvaluationContext, catalog: PricingCatalogResource,
                  data: DataDirectoryResource):
    return _run_request(context.instance, catalog, data, context.scheduled_execution_time.astimezone(UTC).date())


@dg.sensor(job_name=PIPELINE_JOB, minimum_interval_seconds=60,
           description="New (or grown) *.jsonl or *.parquet files in TALLY_DATA_DIR/events start a pipeline run.")
def new_event_files(context: dg.SensorEvaluationContext, data: DataDirectoryResource,
                    catalog: PricingCatalogResource):
    files = {name: (data.events_directory / name).stat().st_size
             for name in discover_event_files(data.events_directory)}
    known = json.loads(context.cursor) if context.cursor else {}
    if not isinstance(known, dict):  # cursors of an earlier version: a list of names
        known = {name: 0 for name in known}
    changed = sorted(name for name, size in files.items() if known.get(name) != size)
    if not changed:
        return dg.SkipReason("no new or grown event files")
    context.update_cursor(json.dumps(files))
    run_key = "events-" + hashlib.sha256(json.dumps({n: files[n] for n in changed}).encode()).hexdigest()[:16]
    return _run_request(context.instance, catalog, data, datetime.now(UTC).date(), run_key=run_key)


def pdfs_after_billing(pipeline_job, pdf_job) -> dg.RunStatusSensorDefinition:
    """After a billing run succeeded, the PDF job (defined with the jobs: a run status sensor names them)."""

    @dg.run_status_sensor(name="pdfs_after_billing", run_status=dg.DagsterRunStatus.SUCCESS,
                          monitored_jobs=[pipeline_job], request_job=pdf_job, minimum_interval_seconds=60,
                          description="After a billing run succeeded: typeset the PDFs of what it published.")
    def sensor(context: dg.RunStatusSensorContext):
        return dg.RunRequest(run_key=f"pdfs-after-{context.dagster_run.run_id}")

    return sensor
