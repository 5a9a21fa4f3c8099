"""A record of the cyclic garbage collector's pauses in a web worker, for the intake bench.

Why: a collection stops every thread of its process while it runs; a full (generation 2)
collection walks every tracked object of a worker that has Flask, SQLAlchemy and marshmallow
loaded. `bench/gc_pauses.py` sets DISPATCHER_GC_LOG to a folder and lines each worker's
pauses up against the webhooks answered late. Off (no callback at all) without the variable.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

ENV = "DISPATCHER_GC_LOG"

_started: list[float] = []
#: (start, generation, seconds, objects collected); perf_counter is CLOCK_MONOTONIC on Linux,
#: the same clock as the load generator's in another process
_pauses: list[tuple[float, int, float, int]] = []


def _callback(phase: str, info: dict) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
    elif _started:
        began = _started.pop()
        _pauses.append((began, info["generation"], time.perf_counter() - began, info["collected"]))


def install() -> None:
    """Start recording if DISPATCHER_GC_LOG names a folder (a gunicorn worker calls it)."""
    if os.environ.get(ENV) and _callback not in gc.callbacks:
        gc.callbacks.append(_callback)


def dump() -> None:
    """Write this process's pauses to <folder>/gc-<pid>.tsv (at the worker's exit)."""
    folder = os.environ.get(ENV)
    if not folder or _callback not in gc.callbacks:
        return
    lines = [f"{start:.6f}\t{gen}\t{secs:.6f}\t{n}\n" for start, gen, secs, n in _pauses]
    (Path(folder) / f"gc-{os.getpid()}.tsv").write_text("".join(lines))
