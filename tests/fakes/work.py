"""Work coming back through the real apply path, for tests that need a delivery waiting for
review without running a platform: the order is marked placed the way the send task marks it,
and the delivery is one normalized event applied by `apply_event`, as a webhook would be."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.base import EventKind, NormalizedEvent
from dispatcher import lifecycle
from dispatcher.dispatch import places
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.models import Delivery, Dispatch


def place(dispatch: Dispatch, external_id: str | None = None) -> Dispatch:
    """Mark a pending dispatch placed at its platform (as send_dispatch does); no commit."""
    if dispatch.state == lifecycle.DispatchState.PENDING:
        lifecycle.DISPATCH.move(dispatch, "place", job=dispatch.job, actor="test")
        dispatch.external_id = external_id or f"ord-{dispatch.id}"
        places.sync_job(dispatch.job, actor="test")
    return dispatch


def event(dispatch: Dispatch, kind: EventKind, **fields) -> NormalizedEvent:
    fields.setdefault("event_id", f"evt-{kind}-{fields.get('delivery_id') or id(fields)}")
    return NormalizedEvent(
        kind=kind,
        external_id=dispatch.external_id,
        occurred_at=datetime.now(UTC),
        raw={"test": True},
        **fields,
    )


def deliver(
    dispatch: Dispatch,
    sub_id: str,
    *,
    worker: str = "w42",
    content: str = "Here is the work.",
    url: str | None = None,
    slot: str = "",
) -> Delivery:
    """One submission for the order, applied and committed; returns its Delivery row."""
    place(dispatch)
    apply_event(
        dispatch.adapter,
        event(
            dispatch,
            EventKind.DELIVERED,
            delivery_id=sub_id,
            worker=worker,
            content=content,
            url=url,
            assignment_ref=slot,
        ),
    )
    db.session.commit()
    return db.session.scalars(
        db.select(Delivery).where(
            Delivery.job_id == dispatch.job_id, Delivery.external_id == sub_id
        )
    ).one()
