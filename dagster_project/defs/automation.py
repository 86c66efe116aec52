"""The daily schedule and the new-event-files sensor: both request the one pipeline job."""

import hashlib
import json
from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.partitions import run_config, run_tags
from dagster_project.defs.resources import DataDirectoryResource, PricingCatalogResource
from dagster_project.ingestion.events import discover_event_files

PIPELINE_JOB = "tally_pipeline"


def _run_request(catalog: PricingCatalogResource, as_of, run_key: str | None = None):
    try:
        loaded = catalog.load()
    except dg.Failure as exc:
        return dg.SkipReason(f"pricing_config/ is invalid, nothing requested:\n{exc.description}")
    return dg.RunRequest(run_key=run_key, tags=run_tags(as_of, loaded), run_config=run_config(as_of))


@dg.schedule(cron_schedule="0 2 * * *", job_name=PIPELINE_JOB, execution_timezone="UTC",
             description="Every day at 02:00 UTC: load new events, meter, and bill every month up to today.")
def daily_billing(context: dg.ScheduleEvaluationContext, catalog: PricingCatalogResource):
    return _run_request(catalog, context.scheduled_execution_time.astimezone(UTC).date())


@dg.sensor(job_name=PIPELINE_JOB, minimum_interval_seconds=60,
           description="New *.jsonl or *.parquet files in TALLY_DATA_DIR/events start a pipeline run.")
def new_event_files(context: dg.SensorEvaluationContext, data: DataDirectoryResource,
                    catalog: PricingCatalogResource):
    files = discover_event_files(data.events_directory)
    known = set(json.loads(context.cursor)) if context.cursor else set()
    new = [name for name in files if name not in known]
    if not new:
        return dg.SkipReason("no new event files")
    context.update_cursor(json.dumps(files))
    run_key = "events-" + hashlib.sha256("\n".join(new).encode()).hexdigest()[:16]
    return _run_request(catalog, datetime.now(UTC).date(), run_key=run_key)
