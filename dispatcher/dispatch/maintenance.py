"""Periodic jobs that make the database the truth (DESIGN rule 1): the reconciler and expiry.

`reconcile` runs on the maintenance queue every few seconds and once at every worker start.
It hands the jobs of dead workers to RQ's abandoned-job handling, then enqueues again every
piece of work the database says is owed but RQ does not hold: pending dispatches, cancels owed
to a platform, webhooks received but not applied, review decisions (accept, revise, reject)
the platform has not confirmed.
Every enqueue uses the job id derived from the row, so reconciling twice queues nothing twice,
and wiping Redis loses nothing.

`expire_overdue` expires jobs that no one took by their deadline and releases their money.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import current_app
from rq import Retry
from sqlalchemy import and_, or_, select

from dispatcher import lifecycle
from dispatcher.dispatch import liveness, places, tasks
from dispatcher.dispatch.locking import lock_job
from dispatcher.extensions import db
from dispatcher.lifecycle import AssignmentState
from dispatcher.lifecycle.assignment import FINISHED
from dispatcher.lifecycle.dispatch import OPEN as OPEN_ORDER
from dispatcher.models import (
    Assignment,
    Delivery,
    Dispatch,
    DispatchState,
    InboundEvent,
    MicroJob,
    Owner,
    PushState,
    Review,
)
from dispatcher.models._base import utcnow
from dispatcher.queues import DISPATCH, enqueue_once, redis_connection
from dispatcher.timezones import MAX_AHEAD, end_of_day

log = logging.getLogger(__name__)

CLOSED_STATES = (DispatchState.CANCELLED, DispatchState.FAILED, DispatchState.CLOSED)
#: RQ retries of a push_review job; once they run out, the reconciler enqueues it afresh
REVIEW_RETRY = Retry(max=8, interval=[1, 2, 5, 10, 20, 30, 60, 120])


def reconcile() -> dict[str, int]:
    """Recover dead workers' jobs and enqueue whatever the database says is owed."""
    conn = redis_connection()
    counts = {"abandoned": len(liveness.recover_abandoned(conn))}
    counts["dispatches"] = _requeue(
        conn,
        db.session.scalars(select(Dispatch.id).where(Dispatch.state == DispatchState.PENDING)),
        tasks.send_job_id,
        tasks.enqueue_send,
    )
    counts["cancels"] = _requeue(
        conn,
        db.session.scalars(
            select(Dispatch.id).where(
                Dispatch.state.in_(CLOSED_STATES), Dispatch.next_attempt_at.is_not(None)
            )
        ),
        tasks.cancel_job_id,
        tasks.enqueue_cancel,
    )
    counts["inbound"] = _requeue(
        conn,
        db.session.scalars(select(InboundEvent.id).where(InboundEvent.status == "received")),
        inbound_job_id,
        _enqueue_apply,
    )
    counts["reviews"] = _requeue(conn, unpushed_reviews(), review_job_id, enqueue_review)
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


def inbound_job_id(inbound_id: int) -> str:
    return f"inbound-{inbound_id}"


def review_job_id(review_id: int) -> str:
    return f"review-{review_id}"


def _enqueue_apply(inbound_id: int) -> bool:
    from dispatcher.inbound.webhooks import enqueue_apply

    return enqueue_apply(inbound_id)


def enqueue_review(review_id: int) -> bool:
    """Queue the push of the owner's decision (a no-op if it is already queued, scheduled or
    running). Raises RedisError; the review stays OWED for the reconciler."""
    settings = current_app.config["SETTINGS"]
    job = enqueue_once(
        DISPATCH,
        tasks.push_review,
        review_id,
        job_id=review_job_id(review_id),
        retry=REVIEW_RETRY,
        job_timeout=tasks.call_timeout(settings),
    )
    return job is not None


def unpushed_reviews() -> list[int]:
    """Ids of every review of a platform delivery whose decision (accept, revise or reject)
    the platform has not confirmed yet, oldest first. Refused pushes are settled (the owner
    was told) and are not retried."""
    return list(
        db.session.scalars(
            select(Review.id)
            .join(Delivery, Review.delivery_id == Delivery.id)
            .where(Review.push_state == PushState.OWED, Delivery.dispatch_id.is_not(None))
            .order_by(Review.id)
        )
    )


# -- expiry ---------------------------------------------------------------------------------
def deadline_of(dispatch: Dispatch, timezone: str | None = None) -> datetime | None:
    """When a dispatch with no taker expires: its own expires_at, else the end of the job's
    due date in the owner's time zone (`timezone`, the owner's zone name)."""
    if dispatch.expires_at is not None:
        return dispatch.expires_at
    due = dispatch.job.due_date
    if due is None:
        return None
    return end_of_day(due, timezone)


def expire_overdue(now: datetime | None = None) -> int:
    """Expire every job still waiting for a taker past its deadline (at `now`, default the
    current time); returns how many."""
    now = now or utcnow()
    # A due date has ended somewhere only if it is before the date it is now where the
    # day starts earliest; each candidate is then checked in its owner's own zone.
    candidates = db.session.execute(
        select(Dispatch, Owner.timezone)
        .join(MicroJob, Dispatch.job_id == MicroJob.id)
        .join(Owner, MicroJob.owner_id == Owner.id)
        .where(
            Dispatch.state.in_((DispatchState.PENDING, DispatchState.PLACED)),
            Dispatch.assignments.any(Assignment.status == AssignmentState.OPEN),
            or_(
                Dispatch.expires_at <= now,
                and_(Dispatch.expires_at.is_(None), MicroJob.due_date < (now + MAX_AHEAD).date()),
            ),
        )
    ).all()
    expired = 0
    for dispatch, timezone in candidates:
        deadline = deadline_of(dispatch, timezone)
        if deadline is not None and deadline <= now:
            expired += expire_dispatch(dispatch, actor="system", reason="no taker by the deadline")
    db.session.rollback()
    return expired


def expire_dispatch(
    dispatch: Dispatch,
    *,
    actor: str,
    reason: str,
    data: dict | None = None,
    commit: bool = True,
) -> int:
    """No taker by the deadline: every place of the order still open ends and gives its
    money back. Once no place is in flight, the order is closed here and cancelled at the
    platform. Places taken or delivered go on. Returns 1 if it expired any place, else 0."""
    job = lock_job(dispatch.job, dispatch)
    opened = [p for p in dispatch.assignments if p.status == AssignmentState.OPEN]
    if dispatch.state not in OPEN_ORDER or not opened:
        if commit:
            db.session.commit()
        return 0
    payload = {"dispatch_id": dispatch.id, "reason": reason, **(data or {})}
    for place in opened:
        places.move(place, "expire", job, actor=actor, data=payload)
    if all(p.status in FINISHED for p in dispatch.assignments):
        action = "cancel" if dispatch.state == DispatchState.PENDING else "close"
        lifecycle.DISPATCH.move(dispatch, action, job=job, actor=actor, data=payload)
        platform = tasks.owe_cancel(dispatch)
        if platform:
            payload["platform"] = platform
    places.sync_job(job, actor=actor, data=payload)
    if not commit:
        return 1
    db.session.commit()
    if dispatch.next_attempt_at is not None:
        tasks.enqueue_quietly(tasks.enqueue_cancel, dispatch.id)
    return 1


#: Every periodic job of this module: (function, interval in seconds). See dispatcher/periodic.py.
PERIODIC_JOBS = [(reconcile, 15), (expire_overdue, 60)]
