"""Telling the platform the owner's review decision, effectively once (the `push_review` task,
by id). The Review row is the staged push (`push_state` OWED); the reconciler re-enqueues
every owed one. When the platform holds another decision, or refuses ours for good, the
books follow the platform (adopt.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app
from rq import Retry
from sqlalchemy import or_, select, update

from adapters.base import (
    Adapter,
    DeliveryRef,
    HeldDecision,
)
from dispatcher import lifecycle
from dispatcher.dispatch import places
from dispatcher.dispatch.backoff import call_timeout, lease, reschedule
from dispatcher.dispatch.channels import guarded_adapter
from dispatcher.errors import AdapterError, RetryableAdapterError, Unsupported
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import AssignmentState
from dispatcher.locking import lock_job
from dispatcher.models import Delivery, PushState, Review
from dispatcher.queues import DISPATCH, enqueue_once
from dispatcher.redis_clock import shared_utcnow

log = logging.getLogger(__name__)

#: RQ retries of a push_review job; once they run out, the reconciler enqueues it afresh
REVIEW_RETRY = Retry(max=8, interval=[1, 2, 5, 10, 20, 30, 60, 120])


def review_job_id(review_id: int) -> str:
    return f"review-{review_id}"


def enqueue_review(review_id: int) -> bool:
    """Queue the push of the owner's decision (a no-op if it is already queued, scheduled or
    running). Raises RedisError; the review stays OWED for the reconciler."""
    settings = current_app.config["SETTINGS"]
    job = enqueue_once(
        DISPATCH,
        push_review,
        review_id,
        job_id=review_job_id(review_id),
        retry=REVIEW_RETRY,
        job_timeout=call_timeout(settings),
    )
    return job is not None


def unpushed_reviews() -> list[int]:
    """Ids of every review of a platform delivery whose decision (accept, revise or reject)
    the platform has not confirmed yet, oldest first. Refused pushes are settled (the owner
    was told) and are not retried."""
    return list(
        db.session.scalars(
            select(Review.id)
            .join(Delivery, Review.delivery_id == Delivery.id)
            .where(Review.push_state == PushState.OWED, Delivery.dispatch_id.is_not(None))
            .order_by(Review.id)
        )
    )


def push_review(review_id: int) -> str | Retry:
    """Tell the platform the owner's decision, effectively once; on an acceptance, mark the
    job paid once every acceptance of it is confirmed.

    The Review row is the staged push (`push_state` OWED). Each attempt is counted before the
    call; any attempt after the first may follow one that reached the platform, so it asks the
    platform what it holds first and adopts a decision already there. A refusal is also
    checked against what the platform holds (some platforms refuse a repeat). Retryable
    failures raise, so RQ retries; the reconciler re-enqueues whatever is still OWED. A
    refusal for good is noted on the job for the owner and not retried."""
    review = db.session.get(Review, review_id)
    if review is None:
        return "gone"
    if review.push_state != PushState.OWED:
        return f"already {review.push_state}"
    delivery = review.delivery
    dispatch = delivery.dispatch
    if dispatch is None:
        _settle_review(review, PushState.NONE)
        db.session.commit()
        return "not a platform delivery"
    if teammate_channel(dispatch):
        # Dispatcher is the marketplace: the decision needs nobody's consent (the person
        # hears it from the outbox), so it is confirmed at once, without a call.
        return _confirm_review(review, dispatch.adapter, adopted=False)
    if not dispatch.external_id:
        return _refuse_review(review, dispatch.adapter, "no order at the platform to review")
    if not _claim(review):
        db.session.rollback()
        db.session.refresh(review)
        if review.push_state != PushState.OWED:
            return "settled by another attempt"
        now = shared_utcnow()  # leases are on Redis's clock
        return reschedule(review.push_lease_until or now, now)  # another attempt is out
    db.session.refresh(review)
    name, attempts = dispatch.adapter, review.push_attempts
    ref = DeliveryRef(dispatch.external_id, delivery.external_id)
    decision = Decision(review.decision, review.payout_cents, review.feedback)
    db.session.commit()  # no transaction stays open while the platform takes its time
    adapter = guarded_adapter(dispatch)
    try:
        if attempts > 1:
            held = _held_decision(adapter, ref)
            if held is not None:
                return _adopt_or_refuse(review, name, held)
        _send_decision(adapter, ref, decision)
    except RetryableAdapterError:
        _release(review)  # the next try need not wait for the lease to run out
        raise
    except Unsupported as exc:
        return _refuse_review(review, name, str(exc))
    except AdapterError as exc:
        held = _held_decision(adapter, ref)  # some platforms refuse a repeat: check
        if held is not None:
            return _adopt_or_refuse(review, name, held)
        return _refuse_review(review, name, str(exc))
    return _confirm_review(review, name, adopted=False)


def teammate_channel(dispatch) -> bool:
    """Whether the order went to a teammate channel (its adapter class says so)."""
    from dispatcher.dispatch.channels import registry

    cls = registry().classes().get(dispatch.adapter)
    return bool(cls is not None and cls.teammate)


@dataclass(frozen=True, slots=True)
class Decision:
    """A plain copy of what a Review tells the platform (no row is held during the call)."""

    decision: str
    payout_cents: int
    feedback: str


def _send_decision(adapter: Adapter, ref: DeliveryRef, review: Decision) -> None:
    if review.decision == "accept":
        adapter.accept(ref, review.payout_cents)
    elif review.decision == "reject":
        adapter.reject(ref, review.feedback)
    elif review.decision == "revise":
        adapter.request_revision(ref, review.feedback)
    else:
        raise Unsupported(f"unknown review decision {review.decision!r}")


def _held_decision(adapter: Adapter, ref: DeliveryRef) -> HeldDecision | None:
    """What the platform holds for the submission; None when it holds nothing, or cannot
    say (no look-up, or one refused for good). Retryable failures raise."""
    try:
        return adapter.decision(ref)
    except RetryableAdapterError:
        raise
    except (AdapterError, Unsupported):
        return None


def _same_decision(review: Review, held: HeldDecision) -> bool:
    """The platform holds our decision (for an acceptance, at whatever payout it paid)."""
    return held.decision == review.decision


def _adopt_or_refuse(review: Review, adapter_name: str, held: HeldDecision) -> str:
    """The platform already holds a decision: ours (adopt it, at the payout it paid) or
    another one, which stands: the books follow the platform and ours is refused."""
    if _same_decision(review, held):
        return _confirm_review(review, adapter_name, adopted=True, held=held)
    reason = f"the platform already holds another decision: {held.decision}"
    if held.payout_cents is not None:
        reason += f" (payout {held.payout_cents} cents)"
    return _refuse_review(review, adapter_name, reason, held=held)


def _settle_review(review: Review, state: PushState) -> bool:
    """Move an OWED review to `state` in the caller's transaction; False if another attempt
    settled it first."""
    action = "confirm" if state == PushState.PUSHED else "refuse"
    if state == PushState.NONE:
        return _update_owed(review, push_state=state)
    return lifecycle.PUSH.guarded_update(Review, review.id, action)


def _claim(review: Review) -> bool:
    """Count the attempt and take the push's lease, in one conditional UPDATE: only while the
    decision is still owed and no other attempt holds an unexpired lease (Redis's clock)."""
    now = shared_utcnow()
    settings = current_app.config["SETTINGS"]
    written = db.session.execute(
        update(Review)
        .where(
            Review.id == review.id,
            Review.push_state == PushState.OWED,
            or_(Review.push_lease_until.is_(None), Review.push_lease_until <= now),
        )
        .values(push_attempts=Review.push_attempts + 1, push_lease_until=now + lease(settings))
        .execution_options(synchronize_session=False)
    ).rowcount
    return written == 1


def _release(review: Review) -> None:
    db.session.rollback()
    db.session.execute(
        update(Review)
        .where(Review.id == review.id)
        .values(push_lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _update_owed(review: Review, **values) -> bool:
    """Write `values` on the review only while it is still OWED (one conditional UPDATE);
    False if another attempt settled it first."""
    written = db.session.execute(
        update(Review)
        .where(Review.id == review.id, Review.push_state == PushState.OWED)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return written == 1


def _confirm_review(
    review: Review, adapter_name: str, *, adopted: bool, held: HeldDecision | None = None
) -> str:
    """The platform holds our decision: for an acceptance, the money it held ("paying") is
    spent now, at the payout the platform says it paid."""
    delivery = review.delivery
    job = lock_job(delivery.job)
    actor = f"adapter:{adapter_name}"
    outcome = "adopted" if adopted else review.decision
    if not _settle_review(review, PushState.PUSHED):
        db.session.commit()
        return "settled by another attempt"
    data = {"review_id": review.id, "decision": review.decision, "adopted": adopted}
    note(job, "review_pushed", actor=actor, **data)
    place = delivery.assignment
    if review.decision == "accept" and place is not None:
        db.session.refresh(place)
        if place.status == AssignmentState.ACCEPTED:
            payout = review.payout_cents
            if held is not None and held.payout_cents is not None:
                payout = held.payout_cents
            places.move(place, "pay", job, actor=actor, payout_cents=payout, data=data)
            places.sync_job(job, actor=actor, data=data)
            places.close_if_finished(place.dispatch, job, actor=actor)
    db.session.commit()
    return outcome


def _refuse_review(
    review: Review, adapter_name: str, reason: str, *, held: HeldDecision | None = None
) -> str:
    """The platform refused our decision for good. The books follow the platform: what it
    holds (`held`) is adopted; with nothing held, an acceptance or a revision request goes
    back to the owner's review queue, its money still held. The timeline says why."""
    from dispatcher.dispatch import adopt

    delivery = review.delivery
    job = lock_job(delivery.job)
    if not _settle_review(review, PushState.REFUSED):
        db.session.commit()
        return "settled by another attempt"
    actor = f"adapter:{adapter_name}"
    note(job, "review_push_failed", actor=actor, review_id=review.id,
         decision=review.decision, reason=reason[:2000])  # fmt: skip
    if delivery.assignment is not None:
        db.session.refresh(delivery.assignment)
        data = {"review_id": review.id, "reason": reason[:500]}
        if held is not None:
            adopt.follow_platform(delivery, held.decision, job, actor=actor,
                                  payout_cents=held.payout_cents, data=data)  # fmt: skip
        else:
            adopt.reverse(delivery, job, actor=actor, data=data)
    db.session.commit()
    return f"refused: {reason}"
