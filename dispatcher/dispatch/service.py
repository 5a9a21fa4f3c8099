"""Handing delegated jobs to their channels: stage, reserve, commit, then enqueue.

The Dispatch row is the staged job (RQ-NOTES: stage and drain). It is written, with the budget
reservation and the job's transition, in one transaction; only then is the send task enqueued.
If the process dies in between, the reconciler finds the pending row and enqueues it.
"""

from __future__ import annotations

import logging
import secrets

from flask import current_app
from redis.exceptions import RedisError

from adapters.base import Adapter, AdapterRegistry, JobSpec
from dispatcher import lifecycle
from dispatcher.dispatch import budget
from dispatcher.dispatch.locking import lock_job
from dispatcher.errors import ConfigurationError, InvalidChange, InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, DispatchState, Goal, MicroJob

log = logging.getLogger(__name__)

DISPATCHABLE = frozenset({Status.DRAFT, Status.READY})
REDISPATCHABLE = frozenset({Status.REJECTED, Status.FAILED, Status.EXPIRED, Status.CANCELLED})


def registry() -> AdapterRegistry:
    return current_app.extensions["dispatcher.adapters"]


def adapter_for(name: str) -> Adapter:
    return registry().get(name)


def new_idempotency_key() -> str:
    return f"dsp_{secrets.token_hex(16)}"


def job_spec(job: MicroJob, dispatch: Dispatch) -> JobSpec:
    """A plain copy of what the platform needs; adapters never see ORM rows."""
    settings = current_app.config["SETTINGS"]
    return JobSpec(
        job_id=job.id,
        title=job.title,
        brief=job.brief or "",
        acceptance_criteria=tuple(job.acceptance_criteria or ()),
        deliverable_kind=job.deliverable_kind,
        price_cents=job.price_cents,
        currency=dispatch.currency,
        assignments=job.assignments,
        due_date=job.due_date,
        callback_url=f"{settings.public_base_url.rstrip('/')}/webhooks/{dispatch.adapter}",
        options=dict(job.channel_options or {}),
    )


def send_job_id(dispatch: Dispatch) -> str:
    """RQ job id for a dispatch: the same dispatch is never queued twice."""
    from dispatcher.dispatch import tasks

    return tasks.send_job_id(dispatch.id)


def check_delegable(job: MicroJob, goal: Goal) -> Adapter:
    """Raise unless the job can go to its channel; return the adapter."""
    if job.children:
        raise InvalidTransition(job.id, job.status, "dispatch", ["dispatch its leaves instead"])
    if job.mode != "delegate" or not job.channel:
        raise InvalidTransition(
            job.id, job.status, "dispatch", ["mark it delegate and pick a channel first"]
        )
    try:
        adapter = adapter_for(job.channel)
    except ConfigurationError as exc:
        raise InvalidTransition(job.id, job.status, "dispatch", [str(exc)]) from None
    if goal.personal and adapter.paid:
        raise InvalidTransition(
            job.id, job.status, "dispatch", ["personal goals never go to paid channels"]
        )
    if adapter.paid and not job.price_cents and not job.free:
        raise InvalidChange(
            "price_cents",
            f"“{job.title}” has no price and {job.channel} is a paid channel: set a price, "
            "or mark the job free if it really pays nothing",
        )
    return adapter


def dispatch_job(job: MicroJob, *, actor: str = "owner", commit: bool = True) -> Dispatch:
    """Reserve the money, stage a Dispatch, move the job to queued; enqueue after commit."""
    lock_job(job)  # an edit of its price or channel commits first (and is seen), or waits
    goal = job.goal
    check_delegable(job, goal)
    action = "requeue" if job.status in REDISPATCHABLE else "queue"
    lifecycle.target(job.status, action, job.id)  # fail before touching money
    budget.reserve(job, job.cost_cents)
    dispatch = Dispatch(
        job_id=job.id,
        adapter=job.channel,
        idempotency_key=new_idempotency_key(),
        amount_cents=job.cost_cents,
        currency=goal.currency,
        state=DispatchState.PENDING,
    )
    db.session.add(dispatch)
    db.session.flush()
    lifecycle.transition(
        job, action, actor=actor, data={"dispatch_id": dispatch.id, "channel": job.channel}
    )
    if commit:
        db.session.commit()
        enqueue_send(dispatch)
    return dispatch


def dispatch_goal(goal: Goal, *, actor: str = "owner") -> list[Dispatch]:
    """Dispatch every delegated leaf that is still draft or ready, all or nothing."""
    from dispatcher.planning.tree import leaves_of

    jobs = [j for j in leaves_of(goal) if j.mode == "delegate" and j.status in DISPATCHABLE]
    try:
        dispatches = [dispatch_job(job, actor=actor, commit=False) for job in jobs]
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    for dispatch in dispatches:
        enqueue_send(dispatch)
    return dispatches


def retry_job(job: MicroJob, *, actor: str = "owner") -> Dispatch:
    """Send a failed, expired, rejected or cancelled job out again, under a new key."""
    if job.status not in REDISPATCHABLE:
        raise InvalidTransition(
            job.id, job.status, "requeue", lifecycle.allowed_actions(job.status)
        )
    return dispatch_job(job, actor=actor)


def open_dispatch(job: MicroJob) -> Dispatch | None:
    """The job's dispatch that is still in play, if any."""
    for dispatch in reversed(job.dispatches):
        if dispatch.state in (DispatchState.PENDING, DispatchState.PLACED):
            return dispatch
    return None


def cancel_job(job: MicroJob, *, actor: str = "owner") -> str:
    """Cancel a job; if it is out at a platform, cancel it there too (after commit).

    Returns a message for the owner saying what happened at the platform.
    """
    from dispatcher.dispatch import tasks

    lock_job(job, *job.dispatches)  # a worker placing the order now finishes first, or waits
    lifecycle.target(job.status, "cancel", job.id)
    dispatch = open_dispatch(job)
    note = ""
    if dispatch is not None:
        budget.release(job, _outstanding(job, dispatch))
        dispatch.state = DispatchState.CANCELLED
        note = tasks.owe_cancel(dispatch)
    lifecycle.transition(job, "cancel", actor=actor, data={"platform": note} if note else {})
    db.session.commit()
    if dispatch is not None and dispatch.next_attempt_at is not None:
        try:
            tasks.enqueue_cancel(dispatch.id)
        except RedisError as exc:
            log.warning("could not enqueue the cancel of %s (%s); the reconciler will",
                        dispatch.id, exc)  # fmt: skip
    return note


def _outstanding(job: MicroJob, dispatch: Dispatch) -> int:
    """What is still reserved for this dispatch: the amount less what was settled."""
    settled = sum(
        job.price_cents for d in dispatch.deliveries if d.status in ("accepted", "rejected")
    )
    return max(0, dispatch.amount_cents - settled)


def enqueue_send(dispatch: Dispatch) -> None:
    """Enqueue after commit. If Redis is down the row stays pending and the reconciler
    enqueues it later, so a Redis error here is logged, not raised to the owner."""
    from dispatcher.dispatch import tasks

    try:
        tasks.enqueue_send(dispatch.id)
    except RedisError as exc:
        log.warning("could not enqueue dispatch %s (%s); the reconciler will", dispatch.id, exc)
