"""Expiry: a job no one took by its deadline gives its open places and their money back
(`expire_overdue`, periodic; `expire_dispatch`). The reconciler is dispatcher/reconcile.py."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import and_, or_, select

from dispatcher import lifecycle
from dispatcher.dispatch import places
from dispatcher.dispatch.cancel import enqueue_cancel, owe_cancel
from dispatcher.extensions import db
from dispatcher.lifecycle import AssignmentState
from dispatcher.lifecycle.assignment import FINISHED
from dispatcher.lifecycle.dispatch import OPEN as OPEN_ORDER
from dispatcher.locking import lock_job
from dispatcher.models import (
    Assignment,
    Dispatch,
    DispatchState,
    MicroJob,
    Owner,
)
from dispatcher.models._base import utcnow
from dispatcher.queues import enqueue_quietly
from dispatcher.timezones import MAX_AHEAD, end_of_day

log = logging.getLogger(__name__)


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
        platform = owe_cancel(dispatch)
        if platform:
            payload["platform"] = platform
    places.sync_job(job, actor=actor, data=payload)
    if not commit:
        return 1
    db.session.commit()
    if dispatch.next_attempt_at is not None:
        enqueue_quietly(enqueue_cancel, dispatch.id)
    return 1


#: Every periodic job of this module: (function, interval in seconds). See dispatcher/periodic.py.
PERIODIC_JOBS = [(expire_overdue, 60)]
