"""The apply step: turn a stored webhook into state changes, by state, so that duplicates
and events out of order still land the job in the right place (DESIGN rule 4).

An event that refers to an order we have not recorded yet (the webhook beat the worker's
commit) raises `NotYetKnown`; RQ retries it. An event whose apply keeps failing is
quarantined and shown to the owner instead of being retried forever.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from adapters.base import EventKind, NormalizedEvent
from dispatcher import lifecycle
from dispatcher.dispatch import budget
from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Dispatch, DispatchState, InboundEvent
from dispatcher.models._base import utcnow

log = logging.getLogger(__name__)

MAX_APPLY_ATTEMPTS = 5


class NotYetKnown(DispatcherError):
    """The event is about an order this database has not recorded yet; try again later."""


def apply_inbound(inbound_id: int) -> str:
    inbound = db.session.get(InboundEvent, inbound_id)
    if inbound is None or inbound.status in ("applied", "invalid", "quarantined"):
        return "nothing to do"
    inbound.attempts += 1
    attempts = inbound.attempts
    db.session.commit()
    adapter = current_app.extensions["dispatcher.adapters"].get(inbound.adapter)
    try:
        for event in adapter.parse(inbound.headers, inbound.body.encode("utf-8")):
            apply_event(inbound.adapter, event)
        inbound = db.session.get(InboundEvent, inbound_id)
        inbound.status = "applied"
        inbound.applied_at = utcnow()
        inbound.error = None
        db.session.commit()
        return "applied"
    except Exception as exc:
        db.session.rollback()
        inbound = db.session.get(InboundEvent, inbound_id)
        inbound.error = f"{type(exc).__name__}: {exc}"
        if attempts >= MAX_APPLY_ATTEMPTS:
            inbound.status = "quarantined"
            db.session.commit()
            log.error("quarantined inbound event %s: %s", inbound_id, exc)
            return "quarantined"
        db.session.commit()
        raise


def apply_event(adapter_name: str, event: NormalizedEvent) -> None:
    """Apply one normalized event to the job its order belongs to; idempotent."""
    dispatch = db.session.scalars(
        select(Dispatch).where(
            Dispatch.adapter == adapter_name, Dispatch.external_id == event.external_id
        )
    ).first()
    if dispatch is None:
        raise NotYetKnown(f"no dispatch for {adapter_name} order {event.external_id} yet")
    job = dispatch.job
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
        if job.status in (Status.QUEUED, Status.DISPATCHED):
            budget.release(job, dispatch.amount_cents)
            dispatch.state = DispatchState.CLOSED
            lifecycle.transition(job, "expire", actor=actor, data=data)
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
