"""Progress of a run: one line per stage with its counts and elapsed time.

Every stage reports to the Dagster log. When the CLI runs the job it also asks for lines on
stdout (TALLY_PROGRESS=lines) or, on a terminal, a progress bar while a long stage runs
(TALLY_PROGRESS=bar); TALLY_VERBOSE=1 lets dbt print its own log. These two variables are the
CLI's way of talking to the steps it runs in-process, and are read only here.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

PROGRESS_VARIABLE = "TALLY_PROGRESS"
VERBOSE_VARIABLE = "TALLY_VERBOSE"
NAME_WIDTH = 16


class Stage:
    def __init__(self, context: dg.AssetExecutionContext | None, name: str, total: int | None, mode: str,
                 verbose: bool):
        self.context, self.name, self.total, self.mode, self.verbose = context, name, total, mode, verbose
        self.started = time.monotonic()
        self._bar = None
        self._task = None
        if mode == "bar" and total and not verbose:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn(f"  {name:<{NAME_WIDTH}}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(name, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, steps)

    def done(self, message: str) -> None:
        self.close()
        elapsed = time.monotonic() - self.started
        if self.context is not None:
            self.context.log.info(f"{self.name}: {message} ({elapsed:.1f} s)")
        if self.mode in ("lines", "bar"):
            print(f"  {self.name:<{NAME_WIDTH}} {message}  ({elapsed:.1f} s)", flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def output_mode() -> str:
    mode = os.environ.get(PROGRESS_VARIABLE, "")
    if mode == "bar" and not sys.stdout.isatty():
        return "lines"
    return mode


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_VARIABLE) == "1"


@contextmanager
def progress(context: dg.AssetExecutionContext | None, name: str, total: int | None = None) -> Iterator[Stage]:
    """A stage of the run; call `done(message)` when it finishes (a failure prints nothing here:
    the CLI reports it)."""
    stage = Stage(context, name, total, output_mode(), is_verbose())
    try:
        yield stage
    finally:
        stage.close()


def report(context: dg.AssetExecutionContext | None, name: str, message: str) -> None:
    """A stage that had nothing long to show: just its line."""
    with progress(context, name) as stage:
        stage.done(message)
