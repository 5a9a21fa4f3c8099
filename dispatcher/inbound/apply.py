"""The apply step: turn a stored webhook into state changes, by state, so that duplicates
and events out of order still land the job in the right place (DESIGN rule 4).

- Each inbound event is applied at most once: the state changes and the event's move from
  ``received`` to ``applied`` commit together, under the job's row lock
  (dispatcher/locking.py), so two workers applying events about one job take turns.
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
from sqlalchemy import select

from adapters.base import EventKind, NormalizedEvent
from dispatcher.dispatch import adopt, places
from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.inbound.stored import POLL, events_of
from dispatcher.journal import note
from dispatcher.lifecycle import ASSIGNMENT, INBOUND, AssignmentState, DeliveryState
from dispatcher.lifecycle.dispatch import OPEN as OPEN_ORDER
from dispatcher.locking import lock_job
from dispatcher.models import Delivery, Dispatch, InboundEvent, MicroJob
from dispatcher.models._base import utcnow

A = AssignmentState

log = logging.getLogger(__name__)

MAX_APPLY_ATTEMPTS = 5
#: how long an event about an unknown order may wait for it before it is quarantined
WAIT_FOR_ORDER = timedelta(hours=6)
#: on a channel that reports things that are not our orders (a board's other cards), how long
#: before such an event is taken to be about one of those and ignored
WAIT_FOR_FOREIGN = timedelta(minutes=10)
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
        for event in events_of(inbound):
            apply_event(inbound.adapter, event, connection_id=inbound.connection_id)
        done = INBOUND.guarded_update(
            InboundEvent, inbound_id, "apply", applied_at=utcnow(), error=None
        )
        if not done:
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
    if age > WAIT_FOR_FOREIGN and _reports_foreign_orders(inbound.adapter):
        INBOUND.move(inbound, "disregard")
        inbound.error = f"about no order of ours after {age}: {exc}"[:2000]
        db.session.commit()
        return "ignored"
    if age > WAIT_FOR_ORDER:
        return _quarantine(inbound, f"no such order after {age}: {exc}")
    db.session.commit()
    delay = min(30.0, max(1.0, age.total_seconds() / 4)) + random.uniform(0, 1)
    return Retry(max=_RESCHEDULE_MAX, interval=math.ceil(delay), enqueue_at_front=True)


def _reports_foreign_orders(adapter_name: str) -> bool:
    cls = current_app.extensions["dispatcher.adapters"].classes().get(adapter_name)
    return bool(cls is not None and cls.reports_foreign_orders)


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
    INBOUND.move(inbound, "quarantine")
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
    if inbound.adapter not in registry and inbound.source != POLL:
        return []
    try:
        events = events_of(inbound)
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
    INBOUND.move(inbound, "retry")
    inbound.attempts = 0
    db.session.commit()
    from dispatcher.inbound.queueing import enqueue_apply_quietly

    enqueue_apply_quietly(inbound.id)


# -- applying one event ---------------------------------------------------------------------
def apply_event(
    adapter_name: str, event: NormalizedEvent, *, connection_id: int | None = None
) -> None:
    """Apply one normalized event to the place (assignment) it is about; idempotent.

    Every change is guarded by the place's current state, so duplicates and events out of
    order land in the right place; the job's status then follows from its places. An event
    that came through a connection only reaches that connection's orders."""
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
    handler = _HANDLERS.get(event.kind)
    if handler is None:
        note(job, _message_kind(adapter_name), actor=actor, text=event.content, **data)
        return
    handler(dispatch, job, event, actor, data)
    places.sync_job(job, actor=actor, data=data)
    places.close_if_finished(dispatch, job, actor=actor)


def _message_kind(adapter_name: str) -> str:
    """A teammate's message is a question for the owner (Today lists the open ones)."""
    cls = current_app.extensions["dispatcher.adapters"].classes().get(adapter_name)
    return "teammate.question" if cls is not None and cls.teammate else "message"


def _place(dispatch: Dispatch, event: NormalizedEvent, *, claim: bool = True):
    return places.find_place(dispatch, ref=event.assignment_ref, worker=event.worker, claim=claim)


def _taken(dispatch, job, event, actor, data) -> None:
    place = _place(dispatch, event)
    if place is not None and place.status == A.OPEN and dispatch.state in OPEN_ORDER:
        place.worker_ref = event.worker or place.worker_ref
        places.move(place, "take", job, actor=actor, data={**data, "worker": event.worker})


def _withdrawn(dispatch, job, event, actor, data) -> None:
    place = _place(dispatch, event, claim=False)
    if place is not None and place.status == A.TAKEN:
        place.worker_ref = ""
        places.move(place, "give_back", job, actor=actor, data=data)


def _returned(dispatch, job, event, actor, data) -> None:
    place = _place(dispatch, event)
    if place is not None and ASSIGNMENT.can(place.status, "return"):
        places.move(place, "return", job, actor=actor, data=data)


def _expired(dispatch, job, event, actor, data) -> None:
    """The platform closed the order (or one place of it): every place nobody delivered
    for ends and gives its money back; work already delivered stays for review."""
    targets = dispatch.assignments
    if event.assignment_ref:
        # a place nobody took has no platform reference yet: it is one of our unnamed ones
        one = _place(dispatch, event)
        targets = [one] if one is not None else []
    for place in targets:
        if ASSIGNMENT.can(place.status, "expire"):
            places.move(place, "expire", job, actor=actor, data=data)


def _delivered(dispatch, job, event, actor, data) -> None:
    delivery_id = event.delivery_id or event.event_id
    existing = db.session.scalars(
        select(Delivery).where(Delivery.job_id == job.id, Delivery.external_id == delivery_id)
    ).first()
    if existing is not None:
        return  # the same submission again: already recorded
    place = _place(dispatch, event)
    on_time = (
        dispatch.state in OPEN_ORDER
        and place is not None
        and ASSIGNMENT.can(place.status, "submit")
    )
    delivery = Delivery(
        job_id=job.id,
        dispatch_id=dispatch.id,
        assignment_id=place.id if place is not None else None,
        external_id=delivery_id,
        worker_ref=event.worker,
        content=event.content,
        url=event.url,
        raw=dict(event.raw),
        status=DeliveryState.SUBMITTED if on_time else DeliveryState.LATE,
    )
    db.session.add(delivery)
    db.session.flush()
    data = {**data, "delivery_id": delivery.id}
    if on_time:
        place.worker_ref = event.worker or place.worker_ref
        places.move(place, "submit", job, actor=actor, data=data)
    else:
        # Work for a closed order or a finished place: kept and shown, charged to nobody.
        note(job, "late_delivery", actor=actor, dispatch_state=dispatch.state,
             assignment_status=place.status if place else None, **data)  # fmt: skip


def _approved(dispatch, job, event, actor, data) -> None:
    """The platform paid (after our acceptance) or approved on its own: the place is paid."""
    delivery = _delivery_named(dispatch, job, event, actor, data)
    if delivery.assignment is None:
        note(job, "payment_without_assignment", actor=actor, delivery_id=delivery.id, **data)
        return
    adopt.approve(delivery, job, actor=actor, payout_cents=event.payout_cents,
                  data={**data, "delivery_id": delivery.id})  # fmt: skip


def _rejected(dispatch, job, event, actor, data) -> None:
    delivery = _delivery_named(dispatch, job, event, actor, data)
    if delivery.assignment is not None:
        adopt.follow_platform(delivery, "reject", job, actor=actor,
                              data={**data, "delivery_id": delivery.id})  # fmt: skip


def _delivery_named(
    dispatch: Dispatch, job: MicroJob, event: NormalizedEvent, actor: str, data: dict
) -> Delivery:
    """The submission a decision event names. One not recorded yet (the decision overtook
    the delivery, or the platform decided before we ever looked) is recorded from the event
    first; an event that names no submission waits (NotYetKnown)."""
    sub = event.delivery_id
    if not sub:
        raise NotYetKnown(f"a {event.kind} event of job {job.id} names no submission")
    query = select(Delivery).where(Delivery.job_id == job.id, Delivery.external_id == sub)
    delivery = db.session.scalars(query).first()
    if delivery is None:
        _delivered(dispatch, job, event, actor, data)
        delivery = db.session.scalars(query).one()
    return delivery


_HANDLERS = {
    EventKind.TAKEN: _taken,
    EventKind.WITHDRAWN: _withdrawn,
    EventKind.RETURNED: _returned,
    EventKind.EXPIRED: _expired,
    EventKind.DELIVERED: _delivered,
    EventKind.PAID: _approved,
    EventKind.APPROVED: _approved,
    EventKind.REJECTED: _rejected,
}
