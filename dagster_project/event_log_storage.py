"""Dagster's consolidated SQLite event log, with its database connections kept for the process.

Dagster's own class opens a new SQLite connection (a new SQLAlchemy engine) for every read and
write, about five per event; a `tally run` records hundreds of events (one per dbt model and test),
and those connections cost about a millisecond each: one to two seconds of every run. Here one
engine with a connection pool serves the process. SQLite's locking is unchanged (WAL, the same busy
timeout), so the webserver and daemon read and write the same file as before.
"""
from contextlib import contextmanager
from functools import cached_property

from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS


class PooledSqliteEventLogStorage(ConsolidatedSqliteEventLogStorage):
    @cached_property
    def _engine(self):
        return create_engine(self._conn_string, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})

    @contextmanager
    def _connect(self):
        with self._engine.connect() as conn:
            with conn.begin():
                yield conn

    def dispose(self):
        if "_engine" in self.__dict__:
            self._engine.dispose()
        super().dispose()
