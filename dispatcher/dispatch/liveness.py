"""What RQ knows about our jobs: which workers are alive, which jobs are really in flight.

RQ notices a dead SimpleWorker's job only when its started-registry entry expires
(job_timeout + 60 s) and some worker's maintenance pass runs (RQ-NOTES: 406 s measured with
the defaults). Our workers instead keep a short-lived key alive from a thread
(`ALIVE_PREFIX` + worker name, refreshed every `HEARTBEAT_SECONDS`, gone `ALIVE_TTL` seconds
after the worker dies); `recover_abandoned`
marks the entries of workers whose key is gone as expired and lets RQ's own clean-up handle
them as abandoned jobs (retried if they have retries left, else failed). Either way the
reconciler then sees no live job for the row and enqueues it again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from redis import Redis
from redis.client import Pipeline
from rq import Queue
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.executions import Execution
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from rq.utils import now as utcnow
from rq.utils import parse_composite_key, utcformat, utcparse

from dispatcher.queues import ALL_QUEUES
from dispatcher.redis_clock import redis_now

log = logging.getLogger(__name__)

ALIVE_PREFIX = "dispatcher:alive:"
YOUNG_PREFIX = "dispatcher:young:"
HEARTBEAT_SECONDS = 3
ALIVE_TTL = 10
#: a job that says queued but is not in its queue after this long is treated as lost
STALE_SECONDS = 60
#: a scheduled job this overdue means no RQ scheduler is moving jobs (the worker holding
#: its lock was killed; RQ takes over only when the lock expires, about a minute later)
OVERDUE_SECONDS = 5


def mark_alive(connection: Redis, worker_name: str) -> None:
    connection.set(ALIVE_PREFIX + worker_name, "1", ex=ALIVE_TTL)


def mark_started(connection: Redis | Pipeline, worker_name: str, job_id: str) -> None:
    """At the start of a job: the worker is alive, and the job is young for ALIVE_TTL
    seconds. Both expire on Redis's clock, so no host's clock is compared with another's.
    Given a pipeline (the worker's: RQ's own, marking the job started), the two SETs go
    with it, in its round trip."""
    if isinstance(connection, Pipeline):
        connection.set(ALIVE_PREFIX + worker_name, "1", ex=ALIVE_TTL)
        connection.set(YOUNG_PREFIX + job_id, worker_name, ex=ALIVE_TTL)
        return
    with connection.pipeline(transaction=False) as pipe:
        mark_started(pipe, worker_name, job_id)
        pipe.execute()


def is_alive(connection: Redis, worker_name: str) -> bool:
    return bool(worker_name) and bool(connection.exists(ALIVE_PREFIX + worker_name))


def recover_abandoned(connection: Redis, queue_names: Iterable[str] = ALL_QUEUES) -> list[str]:
    """Hand the jobs of dead workers to RQ's abandoned-job handling; return their ids."""
    abandoned: list[str] = []
    for name in queue_names:
        registry = StartedJobRegistry(name, connection=connection)
        expired = False
        for entry in connection.zrange(registry.key, 0, -1):
            entry = entry.decode() if isinstance(entry, bytes) else entry
            job_id, _ = parse_composite_key(entry)
            data = connection.hgetall(Execution.from_composite_key(entry, connection).key)
            if not data:
                continue  # no record to judge by: RQ's own expiry will handle it
            worker = data.get(b"worker_name", b"").decode()
            # A job younger than the key's TTL may belong to a worker whose key was just lost
            # with a wiped Redis and is not beaten back yet: wait that long before judging.
            # "Younger" is a key that Redis expires, not the started time that the worker's
            # host wrote compared with this host's clock.
            if connection.exists(YOUNG_PREFIX + job_id) or is_alive(connection, worker):
                continue
            log.warning("job %s: worker %s is gone; recovering it", job_id, worker or "?")
            # Its run has ended (with its worker): recorded, so that a retry asked to go to
            # the front of the queue (Retry(enqueue_at_front=True)) does, as after a failure.
            connection.hset(Job.key_for(job_id), "ended_at", utcformat(utcnow()))
            connection.zadd(registry.key, {entry: 1}, xx=True)
            abandoned.append(job_id)
            expired = True
        if expired:
            registry.cleanup()
    return abandoned


def live_job_ids(connection: Redis, job_ids: list[str]) -> set[str]:
    """The subset of `job_ids` that RQ will run (queued, scheduled, running or deferred),
    leaving out jobs that say queued but are not in their queue, or are long overdue."""
    if not job_ids:
        return set()
    rows = _job_fields(connection, job_ids)
    now = redis_now(connection)
    live: set[str] = set()
    queued: dict[str, set[str]] = {}  # queue name -> the ids in it, read once per call
    for job_id, (status, origin, enqueued_at) in zip(job_ids, rows, strict=True):
        status = status.decode() if status else None
        origin = origin.decode() if origin else ""
        if status in ("started", "deferred"):
            live.add(job_id)
        elif status == "queued":
            age = now - _timestamp(enqueued_at.decode()) if enqueued_at else 0
            if age < STALE_SECONDS or job_id in _queued_ids(connection, origin, queued):
                live.add(job_id)
        elif status == "scheduled":
            due = connection.zscore(ScheduledJobRegistry(origin, connection=connection).key, job_id)
            if due is not None and due > now - OVERDUE_SECONDS:
                live.add(job_id)
    return live


def rescue_overdue(connection: Redis, queue_names: Iterable[str] = ALL_QUEUES) -> list[str]:
    """Enqueue scheduled jobs that RQ's scheduler has left overdue; return their ids.

    Racing a scheduler that wakes up at the same moment can queue a job twice; every task
    here is safe to run twice (leases, conditional updates), so that costs one no-op run."""
    cutoff = redis_now(connection) - OVERDUE_SECONDS
    rescued: list[str] = []
    for name in queue_names:
        registry = ScheduledJobRegistry(name, connection=connection)
        queue = Queue(name, connection=connection)
        for job_id in registry.get_jobs_to_schedule(int(cutoff)):
            job_id = job_id.decode() if isinstance(job_id, bytes) else job_id
            try:
                job = Job.fetch(job_id, connection=connection)
            except (NoSuchJobError, DeserializationError):
                connection.zrem(registry.key, job_id)
                continue
            with connection.pipeline() as pipe:
                registry.remove(job, pipeline=pipe)
                queue._enqueue_job(job, pipeline=pipe, at_front=job.should_enqueue_at_front())
                pipe.execute()
            rescued.append(job_id)
    if rescued:
        log.warning("enqueued %d overdue scheduled jobs (no RQ scheduler running?)", len(rescued))
    return rescued


#: HMGET of status, origin and enqueued_at for every key given, in one call
_JOB_FIELDS = """
local rows = {}
for i, key in ipairs(KEYS) do
  rows[i] = redis.call('HMGET', key, 'status', 'origin', 'enqueued_at')
end
return rows
"""
_FIELDS_CHUNK = 2000


def _job_fields(connection: Redis, job_ids: list[str]) -> list[list[bytes | None]]:
    """(status, origin, enqueued_at) of each job, a script call per 2,000 jobs: a pipeline of
    one HMGET per job spent most of a 50,000-job pass packing and parsing commands
    client-side (bench/bench_reconcile.py, cProfile); each call keeps Redis busy ~1 ms."""
    rows: list[list[bytes | None]] = []
    for start in range(0, len(job_ids), _FIELDS_CHUNK):
        keys = [Job.key_for(j) for j in job_ids[start : start + _FIELDS_CHUNK]]
        rows.extend(connection.eval(_JOB_FIELDS, len(keys), *keys))
    return rows


def _timestamp(rq_time: str) -> float:
    """Unix time of an RQ timestamp. `datetime.fromisoformat` reads RQ's format (ISO 8601 with
    a Z) about 40x faster than RQ's strptime-based `utcparse`: a pass over 50,000 queued jobs
    spent 1.8 s of its 4.3 s parsing them (bench/bench_reconcile.py, cProfile)."""
    try:
        return datetime.fromisoformat(rq_time).timestamp()
    except ValueError:
        return utcparse(rq_time).timestamp()


def _queued_ids(connection: Redis, queue_name: str, cache: dict[str, set[str]]) -> set[str]:
    """The ids in a queue, read once (one LRANGE) and kept in `cache`: an LPOS per job scans
    the whole queue each time, which grows with the square of a backlog."""
    if queue_name not in cache:
        key = Queue(queue_name, connection=connection).key if queue_name else None
        ids = connection.lrange(key, 0, -1) if key else []
        cache[queue_name] = {i.decode() if isinstance(i, bytes) else i for i in ids}
    return cache[queue_name]


def forget(connection: Redis, job_id: str) -> None:
    """Drop a job that is not live, so it can be enqueued again under the same id."""
    try:
        Job.fetch(job_id, connection=connection).delete()
    except (NoSuchJobError, DeserializationError) as exc:
        log.info("forgetting %s: %s", job_id, exc)
        connection.delete(Job.key_for(job_id))
