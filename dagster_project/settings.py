"""DuckDB's resource settings, defined once, so that peak memory is bounded by settings and not by
the number of events.

TALLY_MEMORY_LIMIT (default: a quarter of the machine's memory, at most 8 GB) caps what DuckDB
holds; beyond it, joins, aggregations and sorts spill to TALLY_TEMP_DIR (default: `<warehouse>.tmp`
beside the warehouse). TALLY_THREADS (default: the machine's cores) sets its parallelism.
The Python steps' connections and dbt's (profiles.yml reads the same variables) use them alike.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

GIB = 1024 ** 3


@dataclass(frozen=True)
class DuckDBSettings:
    memory_limit: str
    threads: int
    temp_directory: Path

    def statements(self) -> list[str]:
        return [f"set memory_limit = '{self.memory_limit}'", f"set threads = {self.threads}",
                f"set temp_directory = '{self.temp_directory}'"]

    def environment(self) -> dict[str, str]:
        """The variables profiles.yml reads, so dbt's DuckDB gets the same settings."""
        return {"TALLY_MEMORY_LIMIT": self.memory_limit, "TALLY_THREADS": str(self.threads),
                "TALLY_TEMP_DIR": str(self.temp_directory)}


def machine_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 8 * GIB


def default_memory_limit(total: int | None = None) -> str:
    """A quarter of the machine's memory, between 1 and 8 GB: room for the Python process and
    whatever else runs beside the pipeline."""
    quarter = (total or machine_memory()) // 4
    return f"{max(1, min(8, quarter // GIB))}GB"


def duckdb_settings(warehouse: Path) -> DuckDBSettings:
    return DuckDBSettings(
        memory_limit=os.environ.get("TALLY_MEMORY_LIMIT") or default_memory_limit(),
        threads=int(os.environ.get("TALLY_THREADS") or os.cpu_count() or 1),
        temp_directory=Path(os.environ.get("TALLY_TEMP_DIR")
                            or warehouse.with_name(warehouse.name.removesuffix(".duckdb") + ".tmp")).resolve(),
    )
