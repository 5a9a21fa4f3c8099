"""`dispatcher scheduler`: enqueue the periodic jobs (dispatcher/periodic.py) on time.

Any number of schedulers may run, on any hosts; one at a time holds the `scheduler` lease
in Redis and enqueues, the others wait to take over (within LEASE_SECONDS of the holder's
death). When each job last ran is kept in Redis by Redis's clock, so a new holder keeps the
cadence instead of starting it again. Each periodic job is enqueued under one job id, so
even two holders overlapping for a moment queue it once.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from dispatcher.dispatch import liveness
from dispatcher.ops.checks import scheduler_alive_name
from dispatcher.ops.lease import Lease
from dispatcher.periodic import Periodic, periodic_jobs
from dispatcher.redis_clock import redis_now

log = logging.getLogger(__name__)

LEASE_SECONDS = 5.0
TICK_SECONDS = 1.0
LAST_RUN_KEY = "dispatcher:periodic:last"


def job_name(job: Periodic) -> str:
    return f"{job.func.__module__}.{job.func.__qualname__}"


def tick(app: Flask, connection: Redis, jobs: list[Periodic]) -> list[str]:
    """Enqueue every job whose interval has passed (by Redis's clock); return their names."""
    from dispatcher.queues import enqueue_once

    now = redis_now(connection)
    last = {k.decode(): float(v) for k, v in connection.hgetall(LAST_RUN_KEY).items()}
    due = [job for job in jobs if now - last.get(job_name(job), 0.0) >= job.interval]
    with app.app_context():
        for job in due:
            name = job_name(job)
            enqueue_once(
                job.queue,
                job.func,
                job_id="periodic-" + re.sub(r"[^A-Za-z0-9_-]", "_", name),
                job_timeout=max(180, job.interval * 2),
            )
            connection.hset(LAST_RUN_KEY, name, now)
    return [job_name(job) for job in due]


def run_scheduler(app: Flask, stop: threading.Event | None = None) -> None:
    """Hold the lease and tick, or wait for it; until SIGTERM / SIGINT (or `stop`)."""
    from dispatcher.queues import redis_connection

    stop = stop or _stop_on_signals()
    with app.app_context():
        connection = redis_connection()
    jobs = periodic_jobs()
    lease = Lease(connection, "scheduler", LEASE_SECONDS, f"{socket.gethostname()}:{os.getpid()}")
    held = False
    while not stop.is_set():
        try:
            now_held = lease.hold()
            if now_held != held:
                log.info("scheduler %s the lease", "took" if now_held else "lost")
                held = now_held
            liveness.mark_alive(connection, scheduler_alive_name(socket.gethostname()))
            if held:
                tick(app, connection, jobs)
        except RedisError as exc:
            log.warning("scheduler: Redis unreachable (%s); trying again", exc)
            held = lease.held = False
        stop.wait(TICK_SECONDS)
    try:
        lease.release()  # a clean stop hands over at once
    except RedisError as exc:
        log.warning("scheduler: could not release the lease (%s); it expires by itself", exc)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
