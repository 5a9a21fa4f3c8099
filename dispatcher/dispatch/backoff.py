"""When to try a platform call again: exponential backoff with jitter (never sooner than the
platform's Retry-After), RQ job timeouts and the dispatch lease derived from the HTTP
timeouts, and the `Retry` that reschedules a task under its own job id."""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime, timedelta

from rq import Retry

from dispatcher.models._base import utcnow

log = logging.getLogger(__name__)


BACKOFF_BASE = 2.0

BACKOFF_CAP = 300.0

#: the longest Retry-After we honour as given (a platform asking for a day gets an hour)
RETRY_AFTER_CAP = 3600.0

#: `Retry` returned by a task to reschedule itself; the database decides when to give up.
RESCHEDULE_MAX = 10_000


def backoff(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
) -> float:
    """Seconds before attempt `attempt + 1`: exponential (base * 2^(attempt-1), at most
    `cap`), jittered over its upper half so workers do not come back in step, and never
    sooner than the platform's Retry-After (itself capped, and jittered by up to 1 s)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP) + random.uniform(0, 1))
    return delay


def backoff_for(settings, attempt: int, retry_after: float | None = None) -> float:
    """`backoff` with the configured base and cap (DISPATCH_BACKOFF_BASE / _CAP)."""
    return backoff(
        attempt,
        retry_after,
        base=settings.dispatch_backoff_base,
        cap=settings.dispatch_backoff_cap,
    )


def call_timeout(settings) -> int:
    """RQ job timeout for one platform task: a look-up and a create, each with its own
    connect and read timeouts, plus slack."""
    return int(2 * (settings.http_connect_timeout + settings.http_read_timeout)) + 10


def lease(settings) -> timedelta:
    """How long a claim holds a dispatch: longer than the job may run, so a live attempt
    never outlives its lease, and short enough that a dead one is retried soon."""
    return timedelta(seconds=call_timeout(settings) + 15)


def reschedule(at: datetime, now: datetime | None = None) -> Retry:
    """Run this same job (same id) again at `at`, through RQ's scheduler, ahead of new work
    (it has waited already). `now` is on the clock `at` was written by (Redis's, for leases):
    the delay is their difference, whatever this host's clock says."""
    seconds = max(1, math.ceil((at - (now or utcnow())).total_seconds()))
    return Retry(max=RESCHEDULE_MAX, interval=seconds, enqueue_at_front=True)


#: RQ-level retries of a job that crashed or whose worker died; each goes through the same
#: claim-and-look-up path, so a retry can never place a second order. Retries go to the
#: front of the queue: a recovered job does not wait behind a backlog of new work.
CRASH_RETRY = Retry(max=5, interval=[0, 5, 15, 30, 60], enqueue_at_front=True)
