"""Objects a `tally` process builds once and keeps to its end: the modules it imports, Dagster's
definitions and instance, dbt's parsed manifest.

Python's cyclic garbage collector runs every few hundred allocations and walks the objects that
survived earlier collections. Building these objects is millions of allocations and nothing to
collect: the collector took about a third of importing the definitions, and walked them again in
every later full collection (1.3 s of garbage collection in a 10M-event daily run; 0.3 s with
them built this way). So they are built with the collector paused and then frozen out of its
reach (gc.freeze). gc.freeze takes every object the collector tracks at that moment, so cyclic
garbage not yet collected then, if any, is kept for the process's life: a few objects, against the
dbt and Dagster objects kept anyway (peak memory of the benchmark's runs did not move).
"""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects() -> Iterator[None]:
    """Build what the block builds without the cyclic collector, then freeze it (nests)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
