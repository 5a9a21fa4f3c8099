"""The apply step: turn a stored webhook into state changes, by state, so that duplicates
and events out of order still land the job in the right place (DESIGN rule 4).

- Each inbound event is applied at most once: the state changes and the event's move from
  ``received`` to ``applied`` commit together, under the job's row lock
  (dispatch/locking.py), so two workers applying events about one job take turns.
- Every change is guarded by the job's current state: a "taken" that arrives after
  "delivered" changes nothing; a second delivery after acceptance is recorded as late.
- An event about an order this database has not recorded yet (the webhook beat the worker's
  commit, or the order was made by an attempt that timed out) waits: it is retried with a
  growing delay and does not count as a failure, until `WAIT_FOR_ORDER` has passed.
- An event whose apply keeps failing is quarantined after `MAX_APPLY_ATTEMPTS` and shown to
  the owner (status page, job timeline), who can send it through again.
"""

from __future__ import annotations

import logging
import math
import random
from datetime import timedelta

from flask import current_app
from rq import Retry
from sqlalchemy import select, update

from adapters.base import EventKind, NormalizedEvent
from dispatcher import lifecycle
from dispatcher.dispatch.locking import lock_job
from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Dispatch, InboundEvent
from dispatcher.models._base import utcnow

log = logging.getLogger(__name__)

MAX_APPLY_ATTEMPTS = 5
#: how long an event about an unknown order may wait for it before it is quarantined
WAIT_FOR_ORDER = timedelta(hours=6)
_RESCHEDULE_MAX = 10_000


class NotYetKnown(DispatcherError):
    """The event is about an order this database has not recorded yet; try again later."""


def apply_inbound(inbound_id: int) -> str | Retry:
    """Apply one stored webhook; the RQ task of the ``inbound`` queue."""
    inbound = db.session.get(InboundEvent, inbound_id)
    if inbound is None or inbound.status != "received":
        return "nothing to do"
    # Counted before applying, so an event that kills its worker every time is quarantined.
    inbound.attempts += 1
    db.session.commit()
    try:
        adapter = current_app.extensions["dispatcher.adapters"].get(inbound.adapter)
        for event in adapter.parse(inbound.headers, inbound.body.encode("utf-8")):
            apply_event(inbound.adapter, event, connection_id=inbound.connection_id)
        done = db.session.execute(
            update(InboundEvent)
            .where(InboundEvent.id == inbound_id, InboundEvent.status == "received")
            .values(status="applied", applied_at=utcnow(), error=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done != 1:
            db.session.rollback()  # applied (or quarantined) by someone else meanwhile
            return "already done"
        db.session.commit()
        return "applied"
    except NotYetKnown as exc:
        db.session.rollback()
        return _wait_for_order(inbound_id, exc)
    except Exception as exc:
        db.session.rollback()
        return _failed(inbound_id, exc)


def _wait_for_order(inbound_id: int, exc: NotYetKnown) -> str | Retry:
    inbound = db.session.get(InboundEvent, inbound_id)
    inbound.attempts = max(0, inbound.attempts - 1)  # waiting is not failing
    inbound.error = f"waiting: {exc}"
    age = utcnow() - inbound.received_at
    if age > WAIT_FOR_ORDER:
        return _quarantine(inbound, f"no such order after {age}: {exc}")
    db.session.commit()
    delay = min(30.0, max(1.0, age.total_seconds() / 4)) + random.uniform(0, 1)
    return Retry(max=_RESCHEDULE_MAX, interval=math.ceil(delay), enqueue_at_front=True)


def _failed(inbound_id: int, exc: Exception) -> str:
    """Record the failure; quarantine after too many, else raise so RQ retries."""
    inbound = db.session.get(InboundEvent, inbound_id)
    error = f"{type(exc).__name__}: {exc}"[:2000]
    if inbound.attempts >= MAX_APPLY_ATTEMPTS:
        return _quarantine(inbound, error)
    inbound.error = error
    db.session.commit()
    raise exc


def _quarantine(inbound: InboundEvent, error: str) -> str:
    inbound.status = "quarantined"
    inbound.error = error[:2000]
    for dispatch in dispatches_of(inbound):
        note(
            dispatch.job,
            "inbound_quarantined",
            actor=f"adapter:{inbound.adapter}",
            inbound_id=inbound.id,
            event_id=inbound.event_id,
            error=error[:500],
        )
    db.session.commit()
    log.error("quarantined inbound event %s (%s): %s", inbound.id, inbound.event_id, error)
    return "quarantined"


def dispatches_of(inbound: InboundEvent) -> list[Dispatch]:
    """The dispatches a stored webhook is about, as far as it can be parsed; [] if none."""
    registry = current_app.extensions["dispatcher.adapters"]
    if inbound.adapter not in registry:
        return []
    try:
        events = registry.get(inbound.adapter).parse(inbound.headers, inbound.body.encode())
    except DispatcherError:
        return []
    except Exception:
        # Only used to say which job an event is about; a parser bug must not stop the
        # quarantine that keeps the event from being retried forever.
        log.exception("could not parse inbound event %s to find its job", inbound.id)
        return []
    ids = {e.external_id for e in events if e.external_id}
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Dispatch).where(
                Dispatch.adapter == inbound.adapter,
                Dispatch.external_id.in_(ids),
                *(
                    [Dispatch.connection_id == inbound.connection_id]
                    if inbound.connection_id
                    else []
                ),
            )
        )
    )


def retry_quarantined(inbound: InboundEvent) -> None:
    """The owner's "try again": back to received with a fresh count, then enqueued."""
    if inbound.status != "quarantined":
        raise ValueError(f"inbound event {inbound.id} is {inbound.status}, not quarantined")
    inbound.status = "received"
    inbound.attempts = 0
    db.session.commit()
    from dispatcher.inbound.webhooks import enqueue_apply_quietly

    enqueue_apply_quietly(inbound.id)


# -- applying one event ---------------------------------------------------------------------
def apply_event(
    adapter_name: str, event: NormalizedEvent, *, connection_id: int | None = None
) -> None:
    """Apply one normalized event to the job its order belongs to; idempotent. An event that
    came through a connection only reaches that connection's orders."""
    query = select(Dispatch).where(
        Dispatch.adapter == adapter_name, Dispatch.external_id == event.external_id
    )
    if connection_id is not None:
        query = query.where(Dispatch.connection_id == connection_id)
    dispatch = db.session.scalars(query).first()
    if dispatch is None:
        raise NotYetKnown(f"no dispatch for {adapter_name} order {event.external_id} yet")
    job = lock_job(dispatch.job, dispatch)
    actor = f"adapter:{adapter_name}"
    data = {"event_id": event.event_id, "dispatch_id": dispatch.id}

    if event.kind == EventKind.TAKEN:
        if job.status == Status.DISPATCHED:
            lifecycle.transition(job, "taken", actor=actor, data={**data, "worker": event.worker})
    elif event.kind == EventKind.DELIVERED:
        _apply_delivery(dispatch, event, actor, data)
    elif event.kind == EventKind.WITHDRAWN:
        if job.status == Status.TAKEN:
            lifecycle.transition(job, "withdrawn", actor=actor, data=data)
    elif event.kind == EventKind.EXPIRED:
        from dispatcher.dispatch.maintenance import expire_dispatch

        expire_dispatch(
            dispatch,
            actor=actor,
            reason="expired at the platform",
            at_platform=True,
            data=data,
            commit=False,  # with the event's own commit
        )
    elif event.kind == EventKind.PAID:
        if job.status == Status.ACCEPTED:
            lifecycle.transition(job, "pay", actor=actor, data=data)
    else:
        note(job, "message", actor=actor, text=event.content, **data)


def _apply_delivery(dispatch: Dispatch, event: NormalizedEvent, actor: str, data: dict) -> None:
    job = dispatch.job
    delivery_id = event.delivery_id or event.event_id
    existing = db.session.scalars(
        select(Delivery).where(Delivery.job_id == job.id, Delivery.external_id == delivery_id)
    ).first()
    if existing is not None:
        return  # the same submission again: already recorded
    open_for_work = job.status in (
        Status.DISPATCHED,
        Status.TAKEN,
        Status.REVISION_REQUESTED,
        Status.DELIVERED,
        Status.IN_REVIEW,
    )
    delivery = Delivery(
        job_id=job.id,
        dispatch_id=dispatch.id,
        external_id=delivery_id,
        worker_ref=event.worker,
        content=event.content,
        url=event.url,
        raw=dict(event.raw),
        status="submitted" if open_for_work else "late",
    )
    db.session.add(delivery)
    db.session.flush()
    data = {**data, "delivery_id": delivery.id}
    if job.status in (Status.DISPATCHED, Status.TAKEN, Status.REVISION_REQUESTED):
        lifecycle.transition(job, "delivered", actor=actor, data=data)
    elif open_for_work:
        note(job, "another_delivery", actor=actor, **data)
    else:
        note(job, "late_delivery", actor=actor, job_status=job.status, **data)
