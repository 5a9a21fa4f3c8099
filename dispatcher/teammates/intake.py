"""A submission-page action enters through the same door as a platform's webhook: stored as
an InboundEvent of the channel's connection (unique per form nonce, so a double submit is
stored once), then applied by the inbound apply step (DESIGN rule 4). It is applied inline
for a snappy page; if that cannot finish now, the apply task takes over from the queue."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.teammate import PAGE_HEADER, page_body
from dispatcher.extensions import db
from dispatcher.inbound.queueing import enqueue_apply_quietly
from dispatcher.models import Assignment, Dispatch, InboundEvent
from dispatcher.models._base import utcnow
from dispatcher.people.directory import person_ref

log = logging.getLogger(__name__)


def event_id_for(nonce: str) -> str:
    return "page-" + nonce


def already_stored(dispatch: Dispatch, nonce: str) -> bool:
    return (
        db.session.scalar(
            select(InboundEvent.id).where(
                InboundEvent.connection_id == dispatch.connection_id,
                InboundEvent.event_id == event_id_for(nonce),
            )
        )
        is not None
    )


def record(place: Assignment, action: str, nonce: str, **fields) -> tuple[int, bool]:
    """Store one action and apply it; returns (inbound id, whether it was new)."""
    dispatch = db.session.get(Dispatch, place.dispatch_id)
    person = person_ref(place.person_id)
    body = page_body(
        action,
        order=dispatch.external_id or "",
        nonce=nonce,
        person=person.name if person else "",
        at=utcnow(),
        assignment_id=place.id,
        **fields,
    )
    inbound = InboundEvent(
        adapter=dispatch.adapter,
        connection_id=dispatch.connection_id,
        event_id=event_id_for(nonce),
        source="webhook",
        headers={PAGE_HEADER: "1"},
        body=body.decode("utf-8"),
        status="received",
    )
    db.session.add(inbound)
    try:
        db.session.flush()
        inbound_id = inbound.id
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = db.session.scalar(
            select(InboundEvent.id).where(
                InboundEvent.connection_id == dispatch.connection_id,
                InboundEvent.event_id == event_id_for(nonce),
            )
        )
        return existing, False
    _apply_now(inbound_id)
    return inbound_id, True


def _apply_now(inbound_id: int) -> None:
    from dispatcher.inbound.apply import apply_inbound

    try:
        outcome = apply_inbound(inbound_id)
    except Exception as exc:  # recorded on the row by apply_inbound; the queue retries it
        log.warning("page action %s not applied inline (%s); queued", inbound_id, exc)
        db.session.rollback()
        outcome = None
    if outcome not in ("applied", "already done", "nothing to do"):
        enqueue_apply_quietly(inbound_id)
