"""Work given to a person through the real paths: the dispatch service places the order,
fakes.work delivers through apply_event, the review service decides, and the platform's
word that it paid is applied as its webhook would be."""

from __future__ import annotations

from datetime import datetime

from fakes.work import deliver, event
from sqlalchemy import update

from adapters.base import EventKind
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.models import Delivery, Dispatch, MicroJob
from dispatcher.planning import tree


def given(goal, person, title: str, price: int = 1_000, **fields) -> Dispatch:
    """A delegated job for `person` on the sandbox, dispatched (money reserved)."""
    job = tree.add_job(
        goal, title=title, price_cents=price, mode="delegate", channel="sandbox",
        person_id=person.id, **fields,
    )  # fmt: skip
    return dispatch_service.dispatch_job(job)


def submit(dispatch: Dispatch, sub_id: str, at: datetime | None = None) -> Delivery:
    delivery = deliver(dispatch, sub_id, worker="sam-1")
    if at is not None:
        moved = update(Delivery).where(Delivery.id == delivery.id).values(received_at=at)
        db.session.execute(moved)
        db.session.commit()
        db.session.refresh(delivery)
    return delivery


def placed_at(dispatch: Dispatch, at: datetime) -> None:
    db.session.execute(update(Dispatch).where(Dispatch.id == dispatch.id).values(placed_at=at))
    db.session.commit()


def paid_at_platform(delivery: Delivery) -> None:
    """The platform's word that it paid the submission (the confirm path)."""
    dispatch = delivery.dispatch
    apply_event(
        dispatch.adapter,
        event(dispatch, EventKind.PAID, event_id=f"paid-{delivery.id}",
              delivery_id=delivery.external_id),
    )  # fmt: skip
    db.session.commit()


def job_of(dispatch: Dispatch) -> MicroJob:
    db.session.expire_all()
    return db.session.get(MicroJob, dispatch.job_id)
