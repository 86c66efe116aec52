"""Work over many documents on every core: chunks go to worker processes, results come back in order.

One mechanism for the three per-document steps that cost milliseconds each (JSON documents,
HTML and files, PDFs). Workers are started by a fork server, not forked from the pipeline's
process, which holds DuckDB's threads that a plain fork must not copy. At most a few chunks per
worker are in flight, so memory holds a few chunks, never every document.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

IN_FLIGHT_PER_WORKER = 4


def worker_count() -> int:
    return os.cpu_count() or 1


def map_in_processes(function: Callable, chunks: Iterable, initializer: Callable | None = None,
                     initargs: tuple = ()) -> Iterator:
    """function(chunk) of every chunk, computed by one worker process per core, in chunk order."""
    workers = worker_count()
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start,
                             initargs=(initializer, initargs)) as pool:
        pending = deque()
        for chunk in chunks:
            if len(pending) >= workers * IN_FLIGHT_PER_WORKER:
                yield pending.popleft().result()
            pending.append(pool.submit(function, chunk))
        while pending:
            yield pending.popleft().result()


def _start(initializer: Callable | None, initargs: tuple) -> None:
    # a worker builds documents of plain dicts and lists, which reference counting frees: the
    # cyclic collector would only walk them again and again
    gc.disable()
    if initializer is not None:
        initializer(*initargs)
