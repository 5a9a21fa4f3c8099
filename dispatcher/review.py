"""The owner's review of a delivery: accept (and pay), ask for a revision, or reject.

Each decision is one transaction (Review row, delivery status, job transition, money); the
platform is told afterwards by a task on the `dispatch` queue, retried if it is down. The
Review row is the staged push (`push_state` OWED until the platform confirms it): if the
enqueue is lost, the reconciler finds the row and enqueues it again under the same job id.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, selectinload

from dispatcher import lifecycle
from dispatcher.dispatch import budget
from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, MicroJob, PushState, Review
from dispatcher.models._base import utcnow

log = logging.getLogger(__name__)

OPEN = "submitted"


def awaiting_review(owner_id: int, *, with_reviews: bool = False) -> list[Delivery]:
    """Every delivery the owner has not decided on yet, oldest first.

    Each comes with its job and the job's goal, which every list of deliveries shows, in the
    same query; `with_reviews` loads their past reviews too (one more query for all of them).
    """
    query = (
        _awaiting(owner_id)
        .options(contains_eager(Delivery.job).joinedload(MicroJob.goal))
        .order_by(Delivery.received_at)
    )
    if with_reviews:
        query = query.options(selectinload(Delivery.reviews))
    return list(db.session.scalars(query))


def awaiting_review_count(owner_id: int) -> int:
    """How many deliveries wait for the owner (the nav badge on every page): one COUNT."""
    return db.session.scalar(select(db.func.count()).select_from(_awaiting(owner_id).subquery()))


def _awaiting(owner_id: int):
    from dispatcher.scoping import owned

    return owned(Delivery, owner_id).where(
        Delivery.status == OPEN,
        MicroJob.status.in_(tuple(lifecycle.AWAITING_REVIEW)),
    )


def _check_open(delivery: Delivery, action: str) -> MicroJob:
    job = delivery.job
    if delivery.status != OPEN:
        raise InvalidTransition(
            job.id, job.status, action, [f"this delivery was already {delivery.status}"]
        )
    lifecycle.target(job.status, action, job.id)
    return job


def _accepted_count(job: MicroJob) -> int:
    return (
        db.session.scalar(
            select(db.func.count())
            .select_from(Delivery)
            .where(Delivery.job_id == job.id, Delivery.status == "accepted")
        )
        or 0
    )


def accept(
    delivery: Delivery, *, payout_cents: int | None = None, rating: int | None = None,
    actor: str = "owner",
) -> Review:  # fmt: skip
    """Accept the work: pay up to the job's price; the job is accepted once every
    assignment is."""
    job = _check_open(delivery, "accept")
    payout = job.price_cents if payout_cents is None else payout_cents
    if payout < 0 or payout > job.price_cents:
        raise ValueError(f"payout must be between 0 and the job's price ({job.price_cents} cents)")
    if rating is not None and not 1 <= rating <= 5:
        raise ValueError("rating must be 1 to 5")
    review = _review(delivery, "accept", rating=rating, payout_cents=payout)
    db.session.add(review)
    delivery.status = "accepted"
    budget.spend(job, job.price_cents, payout)
    db.session.flush()
    data = {"delivery_id": delivery.id, "payout_cents": payout, "rating": rating}
    if _accepted_count(job) >= job.assignments:
        lifecycle.transition(job, "accept", actor=actor, data=data)
        job.finished_at = utcnow()
    else:
        note(job, "delivery_accepted", actor=actor, **data)
    db.session.commit()
    _push(review)
    return review


def request_revision(delivery: Delivery, *, feedback: str, actor: str = "owner") -> Review:
    if not feedback or not feedback.strip():
        raise ValueError("say what should change")
    job = _check_open(delivery, "request_revision")
    review = _review(delivery, "revise", feedback=feedback.strip())
    db.session.add(review)
    delivery.status = "revision_requested"
    db.session.flush()
    lifecycle.transition(
        job,
        "request_revision",
        actor=actor,
        data={"delivery_id": delivery.id, "feedback": feedback},
    )
    db.session.commit()
    _push(review)
    return review


def reject(delivery: Delivery, *, reason: str, actor: str = "owner") -> Review:
    """Reject the work and release its money; the owner may re-dispatch the job."""
    if not reason or not reason.strip():
        raise ValueError("give a reason: the worker sees it")
    job = _check_open(delivery, "reject")
    review = _review(delivery, "reject", feedback=reason.strip())
    db.session.add(review)
    delivery.status = "rejected"
    dispatch = delivery.dispatch
    if dispatch is not None:
        from dispatcher.models import DispatchState

        released = max(0, job.reserved_cents)
        budget.release(job, min(released, dispatch.amount_cents))
        dispatch.state = DispatchState.CLOSED
    db.session.flush()
    lifecycle.transition(
        job, "reject", actor=actor, data={"delivery_id": delivery.id, "reason": reason}
    )
    db.session.commit()
    _push(review)
    return review


def _review(delivery: Delivery, decision: str, **fields) -> Review:
    """The Review row, staged as a push the platform is owed (none for a teammate's work)."""
    owed = delivery.dispatch_id is not None
    return Review(
        delivery=delivery,
        decision=decision,
        push_state=PushState.OWED if owed else PushState.NONE,
        **fields,
    )


def _push(review: Review) -> None:
    if review.delivery.dispatch_id is None:
        if review.decision == "accept" and review.delivery.job.status == Status.ACCEPTED:
            # Nothing to pay at a platform (a teammate's work): it is settled now.
            lifecycle.transition(review.delivery.job, "pay", actor="system")
            db.session.commit()
        return
    from dispatcher.dispatch.maintenance import enqueue_review

    try:
        enqueue_review(review.id)
    except RedisError as exc:
        log.warning("could not enqueue review %s (%s); the reconciler will", review.id, exc)
