"""Queue depths, the oldest waiting job and open dispatches per channel: what `dispatcher
stats`, the status page and /metrics show."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from rq import Queue
from rq.job import Job
from rq.utils import utcparse
from sqlalchemy import func, select

from dispatcher.extensions import db
from dispatcher.queues import ALL_QUEUES, redis_connection
from dispatcher.redis_clock import redis_now


@dataclass(frozen=True)
class QueueDepth:
    name: str
    queued: int
    running: int
    scheduled: int
    failed: int
    #: age of the job at the head of the queue, by Redis's clock (0 when the queue is empty)
    oldest_seconds: float = 0.0


def queue_depths(app: Flask | None = None) -> list[QueueDepth]:
    """Every queue's counts (raises RedisError when Redis is unreachable)."""
    conn = redis_connection(app)
    now = redis_now(conn)
    depths = []
    for name in ALL_QUEUES:
        queue = Queue(name, connection=conn)
        depths.append(
            QueueDepth(
                name=name,
                queued=queue.count,
                running=queue.started_job_registry.count,
                scheduled=queue.scheduled_job_registry.count,
                failed=queue.failed_job_registry.count,
                oldest_seconds=_oldest_age(conn, queue, now),
            )
        )
    return depths


def _oldest_age(conn, queue: Queue, now: float) -> float:
    head = conn.lindex(queue.key, 0)
    if head is None:
        return 0.0
    enqueued = conn.hget(Job.key_for(head.decode()), "enqueued_at")
    if not enqueued:
        return 0.0
    return max(0.0, now - utcparse(enqueued.decode()).timestamp())


def open_dispatches() -> dict[str, dict[str, int]]:
    """Dispatches not yet settled, per channel and state (pending, placed)."""
    from dispatcher.models import Dispatch, DispatchState

    rows = db.session.execute(
        select(Dispatch.adapter, Dispatch.state, func.count())
        .where(Dispatch.state.in_([DispatchState.PENDING, DispatchState.PLACED]))
        .group_by(Dispatch.adapter, Dispatch.state)
    )
    counts: dict[str, dict[str, int]] = {}
    for adapter, state, count in rows:
        counts.setdefault(adapter, {})[str(state)] = count
    return counts
