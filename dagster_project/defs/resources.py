"""Resources: where the configuration, data, warehouse and invoices are, and the run's date."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project import run_lock, warehouse
from dagster_project.catalog import Catalog, ConfigError, load_catalog_once


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file. A run holds its lock from start to end (run_lock.py); connections are
    opened per step and closed before dbt runs."""

    path: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        try:
            run_lock.acquire(self.absolute_path, f"dagster run {context.run_id}" if context.run_id else "dagster")
        except run_lock.WarehouseBusy as exc:
            raise dg.Failure(description=str(exc)) from None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        run_lock.release(self.absolute_path)

    @property
    def absolute_path(self) -> Path:
        return Path(self.path).expanduser().resolve()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.absolute_path, read_only=read_only) as con:
            yield con


class PricingCatalogResource(dg.ConfigurableResource):
    """pricing_config/: loaded and validated on first use, again only when a file changed (so a change
    needs no restart, and a run reads it once)."""

    config_dir: str

    @property
    def directory(self) -> Path:
        return Path(self.config_dir).expanduser().resolve()

    def load(self) -> Catalog:
        try:
            return load_catalog_once(self.directory)
        except ConfigError as exc:
            raise dg.Failure(description=str(exc)) from exc


class DataDirectoryResource(dg.ConfigurableResource):
    """TALLY_DATA_DIR: reference CSVs and events/."""

    data_dir: str

    @property
    def directory(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def events_directory(self) -> Path:
        return self.directory / "events"


class InvoicesDirectoryResource(dg.ConfigurableResource):
    """TALLY_INVOICES_DIR: where invoice documents are published."""

    invoices_dir: str

    @property
    def directory(self) -> Path:
        return Path(self.invoices_dir).expanduser().resolve()


class BillingClock(dg.ConfigurableResource):
    """The run's date (a run --as-of D happens at 00:00 UTC of day D); empty means today."""

    as_of: str = ""

    def today(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else datetime.now(UTC).date()


class RunOptions(dg.ConfigurableResource):
    """How a run meters: full_refresh rebuilds every metering table from raw events (the same
    result as the incremental runs that led here, at the cost of reading every event again)."""

    full_refresh: bool = False


class DeliveryOptions(dg.ConfigurableResource):
    """retry_exhausted (`tally deliver --retry`) also retries deliveries that failed
    delivery.max_attempts times, which runs no longer retry on their own."""

    retry_exhausted: bool = False
