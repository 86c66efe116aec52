"""One pipeline run per warehouse at a time, by an advisory lock on a file beside it.

DuckDB allows one writing process per database file, and a run writes in many steps (dbt among
them): a second run started meanwhile would fail halfway on DuckDB's own lock, or interleave its
steps with the first. The lock is taken before a run changes anything and held for the whole run.
It is released when the run ends, and by the operating system if the process dies (even by
kill -9), so a crashed run never blocks the next. The lock file says who holds it.
"""
from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_HELD: dict[Path, list[int]] = {}  # lock file -> [descriptor, holds]: re-entrant within a process


class WarehouseBusy(Exception):
    """Another run holds the warehouse."""


@dataclass(frozen=True)
class Holder:
    pid: int
    started_at: str
    command: str


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


def acquire(warehouse: Path, command: str) -> None:
    """Take the warehouse's lock for this process, or raise WarehouseBusy naming the holder."""
    path = lock_path(warehouse.resolve())
    if path in _HELD:
        _HELD[path][1] += 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = read_holder(path)
        os.close(descriptor)
        who = (f"pid {holder.pid}, started {holder.started_at}: {holder.command}" if holder
               else "another process")
        raise WarehouseBusy(f"another run holds the warehouse {warehouse} ({who}); try again when it has finished") \
            from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, json.dumps({"pid": os.getpid(), "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                     "command": command}).encode())
    _HELD[path] = [descriptor, 1]


def release(warehouse: Path) -> None:
    path = lock_path(warehouse.resolve())
    held = _HELD.get(path)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD[path]
        os.close(held[0])  # closing the descriptor releases the lock


def read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text() or "{}")
        return Holder(int(data["pid"]), str(data["started_at"]), str(data["command"]))
    except (OSError, ValueError, KeyError):
        return None
