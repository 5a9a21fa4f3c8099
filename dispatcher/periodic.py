"""Every periodic job, in one list, enqueued on time by `dispatcher scheduler` (scheduler.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from dispatcher.queues import MAINTENANCE

#: Modules that expose PERIODIC_JOBS = [(func, interval_seconds[, queue]), ...]
SOURCES = (
    "dispatcher.reconcile",
    "dispatcher.dispatch.maintenance",
    "dispatcher.inbound.polling",
    "dispatcher.planning.tasks",
    "dispatcher.today_tasks",
    "dispatcher.notifications.send",
    "dispatcher.teammates.reminders",
)


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., Any]
    interval: int
    queue: str = MAINTENANCE


def periodic_jobs() -> list[Periodic]:
    jobs: list[Periodic] = []
    for name in SOURCES:
        try:
            module = import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        jobs.extend(Periodic(entry[0], int(entry[1]), *entry[2:]) for entry in module.PERIODIC_JOBS)
    return jobs
