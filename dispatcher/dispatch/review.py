"""The owner's review of a delivery: accept (and pay), ask for a revision, or reject.

Each delivery belongs to one assignment (place); a decision moves that place and its money
only, and the job's status follows from its places. Each decision is one transaction, under
the job's lock (Review row, delivery, place, money, the job's derived status); the
platform is told afterwards by a task on the `dispatch` queue, retried if it is down. The
Review row is the staged push (`push_state` OWED until the platform confirms it): if the
enqueue is lost, the reconciler finds the row and enqueues it again under the same job id.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import contains_eager, selectinload

from dispatcher.dispatch import places
from dispatcher.errors import InvalidTransition, Unsupported
from dispatcher.extensions import db
from dispatcher.lifecycle import DELIVERY, DeliveryState, Status
from dispatcher.lifecycle.assignment import UNPAID_END
from dispatcher.lifecycle.delivery import AWAITING
from dispatcher.locking import lock_job
from dispatcher.models import Assignment, Delivery, Dispatch, MicroJob, PushState, Review

log = logging.getLogger(__name__)


def awaiting_review(
    owner_id: int, *, with_reviews: bool = False, goal_id: int | None = None,
    connection_id: int | None = None,
) -> list[Delivery]:  # fmt: skip
    """Every delivery the owner has not decided on yet, oldest first (of one goal, or come
    through one connection, when asked).

    Each comes with its job and the job's goal, which every list of deliveries shows, in the
    same query; `with_reviews` loads their past reviews too (one more query for all of them).
    """
    query = _awaiting(owner_id)
    if goal_id is not None:
        query = query.where(MicroJob.goal_id == goal_id)
    if connection_id is not None:
        orders = select(Dispatch.id).where(Dispatch.connection_id == connection_id)
        query = query.where(Delivery.dispatch_id.in_(orders))
    query = query.options(
        contains_eager(Delivery.job).joinedload(MicroJob.goal),
        selectinload(Delivery.assignment),
        selectinload(Delivery.dispatch),
    ).order_by(Delivery.received_at)
    if with_reviews:
        query = query.options(selectinload(Delivery.reviews))
    return list(db.session.scalars(query))


def awaiting_review_count(owner_id: int) -> int:
    """How many deliveries wait for the owner (the nav badge on every page): one COUNT."""
    return db.session.scalar(select(db.func.count()).select_from(_awaiting(owner_id).subquery()))


def _awaiting(owner_id: int):
    from dispatcher.scoping import owned

    # Each delivery waits on its own: a revision or a decision on one place of a job never
    # hides the other places' work.
    return owned(Delivery, owner_id).where(Delivery.status.in_(tuple(AWAITING)))


def _decide(delivery: Delivery, action: str) -> tuple[MicroJob, Assignment]:
    """Take the job's lock (as every other writer does), then check the decision against
    what the delivery and its place are now: a second click, or a cancel that won the race,
    is refused instead of spending money twice or undoing the cancel."""
    job = lock_job(delivery.job)
    db.session.refresh(delivery)
    place = delivery.assignment
    if place is None:
        raise InvalidTransition(
            job.id, job.status, action, ["this delivery belongs to no assignment"]
        )
    db.session.refresh(place)
    if job.status == Status.CANCELLED and delivery.status != DeliveryState.LATE:
        raise InvalidTransition(job.id, job.status, action, ["the job was cancelled"])
    if not DELIVERY.can(delivery.status, action):
        raise InvalidTransition(
            job.id, job.status, action, [f"this delivery was already {delivery.status}"]
        )
    return job, place


def accept(
    delivery: Delivery, *, payout_cents: int | None = None, rating: int | None = None,
    actor: str = "owner",
) -> Review:  # fmt: skip
    """Accept the work: its money is "paying" until the platform confirms the payment, then
    spent (push.push_review). Late work (its order closed, or its place finished unpaid) is
    accepted only explicitly, and paid from its own order: its money is reserved again."""
    job, place = _decide(delivery, "accept")
    payout = place.price_cents if payout_cents is None else payout_cents
    if payout < 0 or payout > place.price_cents:
        raise ValueError(
            f"payout must be between 0 and the job's price ({place.price_cents} cents)"
        )
    if rating is not None and not 1 <= rating <= 5:
        raise ValueError("rating must be 1 to 5")
    data = {"delivery_id": delivery.id, "payout_cents": payout, "rating": rating}
    if delivery.status == DeliveryState.LATE:
        if place.status not in UNPAID_END:
            raise InvalidTransition(
                job.id, job.status, "accept",
                [f"its assignment is already {place.status}: nothing left to pay it from"],
            )  # fmt: skip
        places.rehold(place, job)
        places.move(place, "accept_late", job, actor=actor, data=data)
    else:
        places.move(place, "accept", job, actor=actor, data=data)
    review = _review(delivery, "accept", rating=rating, payout_cents=payout)
    db.session.add(review)
    DELIVERY.move(delivery, "accept", job=job, actor=actor, data=data)
    places.sync_job(job, actor=actor, data=data)
    _tell_teammate(review, place, job)
    db.session.commit()
    _push(review)
    return review


def request_revision(delivery: Delivery, *, feedback: str, actor: str = "owner") -> Review:
    if not feedback or not feedback.strip():
        raise ValueError("say what should change")
    job, place = _decide(delivery, "request_revision")
    check_revisable(delivery)
    data = {"delivery_id": delivery.id, "feedback": feedback}
    review = _review(delivery, "revise", feedback=feedback.strip())
    db.session.add(review)
    places.move(place, "request_revision", job, actor=actor, data=data)
    DELIVERY.move(delivery, "request_revision", job=job, actor=actor, data=data)
    places.sync_job(job, actor=actor, data=data)
    _tell_teammate(review, place, job)
    db.session.commit()
    _push(review)
    return review


def check_revisable(delivery: Delivery) -> None:
    """Raise Unsupported when the delivery's channel cannot take a revision request: the
    owner is told before anything is sent, and nothing is left waiting for ever. (What a
    channel can do is declared on its adapter class: no connection is needed to know it.)"""
    if delivery.dispatch is None:
        return
    from adapters.base import Capability
    from dispatcher.dispatch.channels import registry

    cls = registry().classes().get(delivery.dispatch.adapter)
    if cls is None or Capability.REVISION not in cls.capabilities:
        title = cls.title if cls is not None else delivery.dispatch.adapter
        raise Unsupported(f"{title} does not take revision requests: accept or reject this work")


def can_revise(delivery: Delivery) -> bool:
    try:
        check_revisable(delivery)
    except Unsupported:
        return False
    return True


def reject(delivery: Delivery, *, reason: str, actor: str = "owner") -> Review:
    """Reject the work: its place ends and gives its money back; the other places go on.
    Once every place is finished, the owner may re-order the missing ones."""
    if not reason or not reason.strip():
        raise ValueError("give a reason: the worker sees it")
    job, place = _decide(delivery, "reject")
    data = {"delivery_id": delivery.id, "reason": reason}
    review = _review(delivery, "reject", feedback=reason.strip())
    db.session.add(review)
    places.move(place, "reject", job, actor=actor, data=data)
    DELIVERY.move(delivery, "reject", job=job, actor=actor, data=data)
    places.sync_job(job, actor=actor, data=data)
    places.close_if_finished(place.dispatch, job, actor=actor)
    _tell_teammate(review, place, job)
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


def _tell_teammate(review: Review, place: Assignment, job: MicroJob) -> None:
    """A teammate hears the decision through the outbox, staged in this transaction."""
    from dispatcher.teammates.briefs import stage_decision

    db.session.flush()
    stage_decision(review, place, job)


def _push(review: Review) -> None:
    if review.delivery.dispatch_id is None:
        return
    from dispatcher.dispatch.push import enqueue_review, push_review, teammate_channel

    if teammate_channel(review.delivery.dispatch):
        push_review(review.id)  # Dispatcher is the marketplace: confirmed here, no call
        return

    try:
        enqueue_review(review.id)
    except RedisError as exc:
        log.warning("could not enqueue review %s (%s); the reconciler will", review.id, exc)
