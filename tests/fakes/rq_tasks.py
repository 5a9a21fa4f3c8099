"""Functions the queue tests enqueue by name and a real RQ worker runs (importable as
`fakes.rq_tasks`): each leaves a trace in Redis a test can read."""

from __future__ import annotations

import time

from rq import get_current_job

#: the list each run of `record` appends to
TRACE = "test:rq-trace"


def record(value: int) -> int:
    get_current_job().connection.rpush(TRACE, value)
    return value


def fail(value: int) -> None:
    get_current_job().connection.rpush(TRACE, f"failed {value}")
    raise RuntimeError(f"failing on purpose: {value}")


def sleep_for(seconds: float) -> None:
    time.sleep(seconds)
    get_current_job().connection.rpush(TRACE, "woke")
