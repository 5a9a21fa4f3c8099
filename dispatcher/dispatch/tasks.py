"""RQ task functions for the `dispatch` queue. They take ids and reload rows (STYLE 7).

`send_dispatch` is the effectively-once path (DESIGN rule 3):

1. It claims the dispatch with a lease (`next_attempt_at`) in one conditional UPDATE that
   also counts the attempt, and commits before calling out. Two workers never hold the same
   dispatch; a worker that dies leaves a lease that runs out, never a lock held forever.
2. Any attempt after the first may follow one that reached the platform (a timeout, a 5xx
   after the order was made, a worker killed mid-call), so it looks the idempotency key up
   first and adopts the order it finds instead of placing another.
3. Retryable failures back off exponentially with jitter, stored in the database
   (`next_attempt_at`) and scheduled in RQ by returning a `Retry` under the same job id, up
   to `dispatch_max_attempts`; then, or on a permanent refusal, the dispatch fails with the
   platform's reason and its money is released.
4. Placing is a conditional UPDATE too: if the owner cancelled (or the job expired) while
   the call was out, the order just made is cancelled at the platform rather than kept.

A dispatch that is not PENDING but has `next_attempt_at` set owes the platform a cancel
(`cancel_at_platform`): the reconciler keeps enqueueing it until it is settled.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value

from adapters.base import Adapter, Capability, DeliveryRef, HeldDecision, Receipt
from dispatcher import lifecycle
from dispatcher.dispatch import places
from dispatcher.dispatch.breaker import guard
from dispatcher.dispatch.locking import lock_job
from dispatcher.dispatch.service import adapter_for, job_spec
from dispatcher.errors import AdapterError, CircuitOpen, RetryableAdapterError, Unsupported
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import AssignmentState
from dispatcher.models import Dispatch, DispatchState, PushState, Review
from dispatcher.models._base import utcnow
from dispatcher.ops import metrics
from dispatcher.queues import DISPATCH, enqueue_once

log = logging.getLogger(__name__)

BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
#: the longest Retry-After we honour as given (a platform asking for a day gets an hour)
RETRY_AFTER_CAP = 3600.0
#: RQ-level retries of a job that crashed or whose worker died; each goes through the same
#: claim-and-look-up path, so a retry can never place a second order. Retries go to the
#: front of the queue: a recovered job does not wait behind a backlog of new work.
CRASH_RETRY = Retry(max=5, interval=[0, 5, 15, 30, 60], enqueue_at_front=True)
#: `Retry` returned by a task to reschedule itself; the database decides when to give up.
_RESCHEDULE_MAX = 10_000


# -- timing ---------------------------------------------------------------------------------
def backoff(
    attempt: int,
    retry_after: float | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
) -> float:
    """Seconds before attempt `attempt + 1`: exponential (base * 2^(attempt-1), at most
    `cap`), jittered over its upper half so workers do not come back in step, and never
    sooner than the platform's Retry-After (itself capped, and jittered by up to 1 s)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP) + random.uniform(0, 1))
    return delay


def backoff_for(settings, attempt: int, retry_after: float | None = None) -> float:
    """`backoff` with the configured base and cap (DISPATCH_BACKOFF_BASE / _CAP)."""
    return backoff(
        attempt,
        retry_after,
        base=settings.dispatch_backoff_base,
        cap=settings.dispatch_backoff_cap,
    )


def call_timeout(settings) -> int:
    """RQ job timeout for one platform task: a look-up and a create, each with its own
    connect and read timeouts, plus slack."""
    return int(2 * (settings.http_connect_timeout + settings.http_read_timeout)) + 10


def lease(settings) -> timedelta:
    """How long a claim holds a dispatch: longer than the job may run, so a live attempt
    never outlives its lease, and short enough that a dead one is retried soon."""
    return timedelta(seconds=call_timeout(settings) + 15)


def _reschedule(at: datetime) -> Retry:
    """Run this same job (same id) again at `at`, through RQ's scheduler, ahead of new work
    (it has waited already)."""
    seconds = max(1, math.ceil((at - utcnow()).total_seconds()))
    return Retry(max=_RESCHEDULE_MAX, interval=seconds, enqueue_at_front=True)


# -- enqueueing -------------------------------------------------------------------------------
def send_job_id(dispatch_id: int) -> str:
    """The one RQ job id of a dispatch: the same dispatch is never queued twice."""
    return f"dispatch-{dispatch_id}"


def cancel_job_id(dispatch_id: int) -> str:
    return f"cancel-{dispatch_id}"


def enqueue_send(dispatch_id: int) -> bool:
    """Queue the send task (a no-op if it is already queued, scheduled or running).

    Raises RedisError; callers that run after a commit log it, since the reconciler will
    find the pending row again."""
    settings = current_app.config["SETTINGS"]
    job = enqueue_once(
        DISPATCH,
        send_dispatch,
        dispatch_id,
        job_id=send_job_id(dispatch_id),
        retry=CRASH_RETRY,
        job_timeout=call_timeout(settings),
    )
    return job is not None


def enqueue_cancel(dispatch_id: int) -> bool:
    settings = current_app.config["SETTINGS"]
    job = enqueue_once(
        DISPATCH,
        cancel_at_platform,
        dispatch_id,
        job_id=cancel_job_id(dispatch_id),
        retry=CRASH_RETRY,
        job_timeout=call_timeout(settings),
    )
    return job is not None


def enqueue_quietly(func, dispatch_id: int) -> None:
    """Enqueue after a commit; if Redis is down, log it: the reconciler will enqueue it."""
    try:
        func(dispatch_id)
    except RedisError as exc:
        log.warning("could not enqueue %s(%s) (%s); the reconciler will", func.__name__,
                    dispatch_id, exc)  # fmt: skip


def guarded_adapter(dispatch: Dispatch) -> Adapter:
    """The dispatch's connection's adapter, with the circuit breaker every worker shares."""
    return guard(adapter_for(dispatch))


# -- sending --------------------------------------------------------------------------------
def claim(dispatch_id: int) -> Dispatch | None:
    """Take the lease on a pending, due dispatch and count the attempt; None if it is held
    by another attempt, not due yet, or no longer pending.

    One UPDATE ... RETURNING, then the commit: the row comes back with the UPDATE, and the
    values it returned are kept through the commit instead of read again."""
    now = utcnow()
    settings = current_app.config["SETTINGS"]
    dispatch = db.session.scalars(
        update(Dispatch)
        .where(
            Dispatch.id == dispatch_id,
            Dispatch.state == DispatchState.PENDING,
            or_(Dispatch.next_attempt_at.is_(None), Dispatch.next_attempt_at <= now),
        )
        .values(attempts=Dispatch.attempts + 1, next_attempt_at=now + lease(settings))
        .returning(Dispatch)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if dispatch is None:
        db.session.commit()
        return None
    returned = {key: getattr(dispatch, key) for key in _DISPATCH_COLUMNS}
    db.session.commit()
    for key, value in returned.items():
        set_committed_value(dispatch, key, value)
    return dispatch


_DISPATCH_COLUMNS = tuple(attr.key for attr in sa_inspect(Dispatch).column_attrs)


@metrics.observe_dispatch
def send_dispatch(dispatch_id: int) -> str | Retry:
    """Place one dispatch at its platform, safely under retries and worker deaths."""
    dispatch = claim(dispatch_id)
    if dispatch is None:
        return _not_claimed(dispatch_id)
    settings = current_app.config["SETTINGS"]
    adapter = guarded_adapter(dispatch)
    spec = job_spec(dispatch.job, dispatch)
    key, attempts = dispatch.idempotency_key, dispatch.attempts
    db.session.commit()  # no transaction stays open while the platform takes its time
    adopted = False
    try:
        receipt = None
        if attempts > 1 and adapter.supports(Capability.FIND):
            receipt = adapter.find(key)
            adopted = receipt is not None
        if receipt is None:
            receipt = adapter.dispatch(spec, key)
    except CircuitOpen as exc:
        return _wait_for_breaker(dispatch, exc)
    except RetryableAdapterError as exc:
        return _retry_later(dispatch, exc, settings.dispatch_max_attempts)
    except AdapterError as exc:
        _fail(dispatch, str(exc), owe_cancel=attempts > 1)
        return "failed"
    return _placed(dispatch, receipt, adopted)


def _not_claimed(dispatch_id: int) -> str | Retry:
    """Someone else holds the lease, or it is not due yet: come back then; else done."""
    db.session.rollback()
    dispatch = db.session.get(Dispatch, dispatch_id)
    if dispatch is None:
        return "gone"
    if dispatch.state != DispatchState.PENDING:
        return f"skipped: {dispatch.state}"
    return _reschedule(dispatch.next_attempt_at or utcnow())


def _placed(dispatch: Dispatch, receipt: Receipt, adopted: bool) -> str:
    job = lock_job(dispatch.job, dispatch)
    now = utcnow()
    values = dict(
        external_id=receipt.external_id,
        external_url=receipt.url or None,
        placed_at=now,
        next_attempt_at=None,
        last_error=None,
    )
    if lifecycle.DISPATCH.guarded_update(Dispatch, dispatch.id, "place", **values):
        db.session.refresh(dispatch)
        data = {
            "dispatch_id": dispatch.id,
            "external_id": receipt.external_id,
            "attempts": dispatch.attempts,
            "adopted": adopted,
        }
        actor = f"adapter:{dispatch.adapter}"
        lifecycle.record(job, "dispatch.place", from_status=DispatchState.PENDING,
                         to_status=DispatchState.PLACED, actor=actor, data=data)  # fmt: skip
        places.sync_job(job, actor=actor, data=data)
        db.session.commit()
        return "adopted" if adopted else "placed"
    if dispatch.state == DispatchState.PLACED:
        db.session.commit()  # another attempt placed it (the same order, by key)
        return "already placed"
    # Cancelled or expired while the call was out: do not keep an order nobody wants.
    dispatch.external_id = dispatch.external_id or receipt.external_id
    dispatch.external_url = dispatch.external_url or receipt.url or None
    dispatch.next_attempt_at = now
    db.session.commit()
    enqueue_quietly(enqueue_cancel, dispatch.id)
    return f"placed after it was {dispatch.state}: cancelling"


def _closed_meanwhile(dispatch: Dispatch) -> str | None:
    """The dispatch was cancelled or expired while an attempt that may have reached the
    platform was out: owe the platform a cancel again, since a cancel that ran meanwhile may
    have found no order yet (the create was still in flight). None if it is still pending."""
    db.session.rollback()
    db.session.refresh(dispatch)
    if dispatch.state == DispatchState.PENDING:
        return None
    if dispatch.state in (DispatchState.CANCELLED, DispatchState.CLOSED):
        dispatch.next_attempt_at = utcnow()
        db.session.commit()
        enqueue_quietly(enqueue_cancel, dispatch.id)
        return f"{dispatch.state} while the attempt was out: cancel owed again"
    db.session.commit()
    return f"skipped: {dispatch.state}"


def _wait_for_breaker(dispatch: Dispatch, exc: CircuitOpen) -> Retry:
    """No call went out: give the attempt back and come back when the breaker may let us."""
    at = utcnow() + timedelta(seconds=(exc.retry_after or 1.0) + random.uniform(0.5, 3.0))
    db.session.execute(
        update(Dispatch)
        .where(Dispatch.id == dispatch.id, Dispatch.state == DispatchState.PENDING)
        .values(attempts=Dispatch.attempts - 1, next_attempt_at=at, last_error=str(exc))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return _reschedule(at)


def _retry_later(dispatch: Dispatch, exc: RetryableAdapterError, max_attempts: int) -> str | Retry:
    closed = _closed_meanwhile(dispatch)
    if closed is not None:
        return closed
    if dispatch.attempts >= max_attempts:
        _fail(dispatch, f"gave up after {dispatch.attempts} attempts: {exc}", owe_cancel=True)
        return "failed"
    settings = current_app.config["SETTINGS"]
    at = utcnow() + timedelta(seconds=backoff_for(settings, dispatch.attempts, exc.retry_after))
    db.session.execute(
        update(Dispatch)
        .where(Dispatch.id == dispatch.id, Dispatch.state == DispatchState.PENDING)
        .values(next_attempt_at=at, last_error=str(exc)[:2000])
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return _reschedule(at)


def _fail(dispatch: Dispatch, reason: str, *, owe_cancel: bool) -> None:
    """Give up: the owner sees the platform's reason and can retry; money goes back.

    `owe_cancel`: an earlier attempt may have made an order we never heard back about, so
    the platform is asked (look-up, then cancel) once it answers again."""
    job = lock_job(dispatch.job, dispatch)
    if dispatch.state != DispatchState.PENDING:
        db.session.commit()
        if owe_cancel:
            _closed_meanwhile(dispatch)
        return
    actor = f"adapter:{dispatch.adapter}"
    data = {"dispatch_id": dispatch.id, "reason": reason[:2000]}
    lifecycle.DISPATCH.move(dispatch, "fail", job=job, actor=actor, data=data)
    dispatch.last_error = reason[:2000]
    dispatch.next_attempt_at = utcnow() if owe_cancel else None
    for place in dispatch.assignments:
        if place.status in places.IN_FLIGHT:
            places.move(place, "cancel", job, actor=actor)
    places.sync_job(job, actor=actor, data=data)
    db.session.commit()
    if owe_cancel:
        enqueue_quietly(enqueue_cancel, dispatch.id)


# -- cancelling -----------------------------------------------------------------------------
def owe_cancel(dispatch: Dispatch) -> str:
    """Mark a dispatch that is being closed as owing the platform a cancel, if an order may
    exist there; returns what the owner should be told. The caller commits, then calls
    `enqueue_cancel`."""
    if dispatch.external_id is None and dispatch.attempts == 0:
        return ""
    adapter = adapter_for(dispatch)
    if not adapter.supports(Capability.CANCEL):
        return f"{dispatch.adapter} cannot cancel orders through its API: cancel it there by hand"
    dispatch.next_attempt_at = utcnow()
    return "the order is being cancelled at the platform"


def cancel_at_platform(dispatch_id: int) -> str | Retry:
    """Cancel whatever order a closed dispatch left at the platform; idempotent."""
    dispatch = db.session.get(Dispatch, dispatch_id)
    if dispatch is None or dispatch.next_attempt_at is None:
        return "nothing owed"
    if dispatch.state in (DispatchState.PENDING, DispatchState.PLACED):
        return f"not cancelling a {dispatch.state} dispatch"
    if dispatch.next_attempt_at > utcnow():
        return _reschedule(dispatch.next_attempt_at)
    adapter = guarded_adapter(dispatch)
    external_id = dispatch.external_id
    try:
        if external_id is None and adapter.supports(Capability.FIND):
            found = adapter.find(dispatch.idempotency_key)
            external_id = found.external_id if found else None
        if external_id is None:
            if not adapter.supports(Capability.FIND):
                return _settle_cancel(dispatch, None, "cannot look the order up: check by hand")
            return _settle_cancel(dispatch, None, "")
        adapter.cancel(external_id)
    except Unsupported as exc:
        return _settle_cancel(dispatch, external_id, f"cannot cancel at the platform: {exc}")
    except RetryableAdapterError as exc:
        settings = current_app.config["SETTINGS"]
        at = utcnow() + timedelta(seconds=backoff_for(settings, 3, exc.retry_after))
        dispatch.next_attempt_at = at
        dispatch.last_error = f"cancel: {exc}"[:2000]
        db.session.commit()
        return _reschedule(at)
    except AdapterError as exc:
        return _settle_cancel(dispatch, external_id, f"the platform refused to cancel: {exc}")
    return _settle_cancel(dispatch, external_id, "cancelled at the platform")


def _settle_cancel(dispatch: Dispatch, external_id: str | None, outcome: str) -> str:
    dispatch.next_attempt_at = None
    if external_id and not dispatch.external_id:
        dispatch.external_id = external_id
    if outcome:
        note(
            dispatch.job,
            "platform_cancel",
            actor=f"adapter:{dispatch.adapter}",
            dispatch_id=dispatch.id,
            external_id=external_id,
            outcome=outcome,
        )
    db.session.commit()
    return outcome or "no order at the platform"


# -- reviews --------------------------------------------------------------------------------
def push_review(review_id: int) -> str:
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
    if not dispatch.external_id:
        return _refuse_review(review, dispatch.adapter, "no order at the platform to review")
    if not _update_owed(review, push_attempts=Review.push_attempts + 1):
        db.session.commit()
        return "settled by another attempt"
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
        raise
    except Unsupported as exc:
        return _refuse_review(review, name, str(exc))
    except AdapterError as exc:
        held = _held_decision(adapter, ref)  # some platforms refuse a repeat: check
        if held is not None:
            return _adopt_or_refuse(review, name, held)
        return _refuse_review(review, name, str(exc))
    return _confirm_review(review, name, adopted=False)


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


__all__ = [
    "backoff",
    "call_timeout",
    "cancel_at_platform",
    "claim",
    "enqueue_cancel",
    "enqueue_send",
    "lease",
    "owe_cancel",
    "push_review",
    "send_dispatch",
    "send_job_id",
]
