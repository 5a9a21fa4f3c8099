"""Periodic jobs that make the database the truth (DESIGN rule 1): the reconciler and expiry.

`reconcile` runs on the maintenance queue every few seconds and once at every worker start.
It hands the jobs of dead workers to RQ's abandoned-job handling, then enqueues again every
piece of work the database says is owed but RQ does not hold: pending dispatches, cancels owed
to a platform, webhooks received but not applied, review decisions (accept, revise, reject)
the platform has not confirmed, notices to teammates still in the outbox.
Every enqueue uses the job id derived from the row, so reconciling twice queues nothing twice,
and wiping Redis loses nothing.

It sits above dispatch and inbound, whose work it re-drives, so neither imports the other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from dispatcher.dispatch import liveness
from dispatcher.dispatch.cancel import cancel_job_id, enqueue_cancel
from dispatcher.dispatch.push import enqueue_review, review_job_id, unpushed_reviews
from dispatcher.dispatch.send import enqueue_send, send_job_id
from dispatcher.extensions import db
from dispatcher.inbound.queueing import enqueue_apply, inbound_job_id
from dispatcher.models import Dispatch, DispatchState, InboundEvent
from dispatcher.queues import redis_connection
from dispatcher.teammates import outbox

log = logging.getLogger(__name__)


def reconcile() -> dict[str, int]:
    """Recover dead workers' jobs and enqueue whatever the database says is owed."""
    conn = redis_connection()
    counts = {"abandoned": len(liveness.recover_abandoned(conn))}
    counts["dispatches"] = _requeue(
        conn,
        db.session.scalars(select(Dispatch.id).where(Dispatch.state == DispatchState.PENDING)),
        send_job_id,
        enqueue_send,
    )
    counts["cancels"] = _requeue(
        conn,
        db.session.scalars(
            select(Dispatch.id).where(
                Dispatch.state.in_(CLOSED_STATES), Dispatch.next_attempt_at.is_not(None)
            )
        ),
        cancel_job_id,
        enqueue_cancel,
    )
    counts["inbound"] = _requeue(
        conn,
        db.session.scalars(select(InboundEvent.id).where(InboundEvent.status == "received")),
        inbound_job_id,
        enqueue_apply,
    )
    counts["reviews"] = _requeue(conn, unpushed_reviews(), review_job_id, enqueue_review)
    counts["outbox_abandoned"] = outbox.settle_abandoned()
    counts["outbox"] = _requeue(conn, outbox.pending_ids(), outbox.send_job_id, outbox.enqueue_send)
    db.session.rollback()  # read-only here: end the transaction the SELECTs opened
    if any(counts.values()):
        log.info("reconciled: %s", counts)
    return counts


def _requeue(conn, ids, job_id_for: Callable[[int], str], enqueue: Callable[[int], bool]) -> int:
    """Enqueue each id whose RQ job is not live; returns how many were enqueued."""
    ids = list(ids)
    job_ids = [job_id_for(i) for i in ids]
    live = liveness.live_job_ids(conn, job_ids)
    enqueued = 0
    for row_id, job_id in zip(ids, job_ids, strict=True):
        if job_id in live:
            continue
        liveness.forget(conn, job_id)
        if enqueue(row_id):
            enqueued += 1
    return enqueued


CLOSED_STATES = (DispatchState.CANCELLED, DispatchState.FAILED, DispatchState.CLOSED)


#: Every periodic job of this module: (function, interval in seconds). See dispatcher/periodic.py.
PERIODIC_JOBS = [(reconcile, 15)]
