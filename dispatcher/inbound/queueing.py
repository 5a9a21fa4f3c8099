"""Queueing the apply step of a stored inbound event (webhook or polled change), under the
event's own job id, so the same event is never queued twice. The task is named by its path:
this module is imported by intake, apply, the poller and the reconciler alike."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rq import Retry

from dispatcher.queues import INBOUND, enqueue_many_once, enqueue_once

log = logging.getLogger(__name__)

#: the apply task, by name (an import here would make intake and apply import each other)
APPLY_TASK = "dispatcher.inbound.apply.apply_inbound"


def inbound_job_id(inbound_id: int) -> str:
    return f"inbound-{inbound_id}"


#: RQ retries of an apply job that raised or whose worker died
APPLY_RETRY_INTERVALS = [1, 3, 10, 30, 60]

APPLY_TIMEOUT = 60


_RETRY = Retry(
    max=len(APPLY_RETRY_INTERVALS), interval=APPLY_RETRY_INTERVALS, enqueue_at_front=True
)


def _options() -> dict:
    return {"retry": _RETRY, "job_timeout": APPLY_TIMEOUT}


def enqueue_apply(inbound_id: int) -> bool:
    """Queue the apply step under the event's own job id; False if it is already queued."""
    job = enqueue_once(
        INBOUND, APPLY_TASK, inbound_id, job_id=inbound_job_id(inbound_id), **_options()
    )
    return job is not None


def enqueue_apply_many_quietly(inbound_ids: list[int]) -> None:
    """`enqueue_apply_quietly` for a group of stored events, in one Redis round trip."""
    try:
        enqueue_many_once(
            INBOUND, APPLY_TASK, [(inbound_job_id(i), (i,)) for i in inbound_ids], **_options()
        )
    except RedisError as exc:
        log.warning("could not enqueue inbound %s (%s); the reconciler will", inbound_ids, exc)


def enqueue_apply_quietly(inbound_id: int) -> None:
    """After the commit: if Redis is down, the reconciler picks the row up later."""
    try:
        enqueue_apply(inbound_id)
    except RedisError as exc:
        log.warning("could not enqueue inbound %s (%s); the reconciler will", inbound_id, exc)
