"""RQ task functions for the `dispatch` queue. They take ids and reload rows (STYLE 7).

`send_dispatch` is the effectively-once path (DESIGN rule 3): it claims the row with a lease,
counts the attempt before calling out, and on any attempt after the first looks the
idempotency key up at the platform before creating anything.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, update

from adapters.base import Capability, DeliveryRef
from dispatcher import lifecycle
from dispatcher.dispatch import budget
from dispatcher.dispatch.service import adapter_for, job_spec, send_job_id
from dispatcher.errors import AdapterError, RetryableAdapterError, Unsupported
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, DispatchState, Review
from dispatcher.models._base import utcnow
from dispatcher.queues import DISPATCH, get_queue

log = logging.getLogger(__name__)

#: How long a worker holds a dispatch while it talks to the platform.
LEASE = timedelta(seconds=60)
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter, never sooner than the platform's Retry-After."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def claim(dispatch_id: int) -> Dispatch | None:
    """Take the lease on a pending dispatch; None if another worker holds it or it is done."""
    now = utcnow()
    claimed = db.session.execute(
        update(Dispatch)
        .where(
            Dispatch.id == dispatch_id,
            Dispatch.state == DispatchState.PENDING,
            or_(Dispatch.next_attempt_at.is_(None), Dispatch.next_attempt_at <= now),
        )
        .values(attempts=Dispatch.attempts + 1, next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        return None
    return db.session.get(Dispatch, dispatch_id)


def send_dispatch(dispatch_id: int) -> str:
    """Place one dispatch at its platform, safely under retries and worker deaths."""
    dispatch = claim(dispatch_id)
    if dispatch is None:
        return "skipped"
    settings = current_app.config["SETTINGS"]
    adapter = adapter_for(dispatch.adapter)
    job = dispatch.job
    try:
        receipt = None
        if dispatch.attempts > 1 and adapter.supports(Capability.FIND):
            receipt = adapter.find(dispatch.idempotency_key)
        adopted = receipt is not None
        if receipt is None:
            receipt = adapter.dispatch(job_spec(job, dispatch), dispatch.idempotency_key)
    except RetryableAdapterError as exc:
        return _retry_later(dispatch, exc, settings.dispatch_max_attempts)
    except AdapterError as exc:
        _fail(dispatch, str(exc))
        return "failed"
    dispatch.external_id = receipt.external_id
    dispatch.external_url = receipt.url or None
    dispatch.state = DispatchState.PLACED
    dispatch.placed_at = utcnow()
    dispatch.next_attempt_at = None
    dispatch.last_error = None
    if job.status == Status.QUEUED:
        lifecycle.transition(
            job,
            "dispatched",
            actor=f"adapter:{dispatch.adapter}",
            data={
                "dispatch_id": dispatch.id,
                "external_id": receipt.external_id,
                "attempts": dispatch.attempts,
                "adopted": adopted,
            },
        )
    db.session.commit()
    return "placed"


def _retry_later(dispatch: Dispatch, exc: RetryableAdapterError, max_attempts: int) -> str:
    if dispatch.attempts >= max_attempts:
        _fail(dispatch, f"gave up after {dispatch.attempts} attempts: {exc}")
        return "failed"
    delay = backoff(dispatch.attempts, exc.retry_after)
    dispatch.last_error = str(exc)
    dispatch.next_attempt_at = utcnow() + timedelta(seconds=delay)
    db.session.commit()
    # The next attempt has its own job id (attempt number), so this does not collide with
    # the job that is running now.
    get_queue(DISPATCH).enqueue_in(
        timedelta(seconds=delay),
        send_dispatch,
        dispatch.id,
        job_id=f"dispatch-{dispatch.id}-a{dispatch.attempts}-retry",
        result_ttl=0,
    )
    return f"retry in {delay:.1f}s"


def _fail(dispatch: Dispatch, reason: str) -> None:
    """A permanent failure: the owner sees the platform's reason and can retry."""
    job = dispatch.job
    dispatch.state = DispatchState.FAILED
    dispatch.last_error = reason
    dispatch.next_attempt_at = None
    if job.status in (Status.QUEUED, Status.DISPATCHED):
        budget.release(job, dispatch.amount_cents)
        lifecycle.transition(
            job,
            "fail",
            actor=f"adapter:{dispatch.adapter}",
            data={"dispatch_id": dispatch.id, "reason": reason},
        )
    db.session.commit()


def cancel_at_platform(dispatch_id: int) -> str:
    dispatch = db.session.get(Dispatch, dispatch_id)
    if dispatch is None or not dispatch.external_id:
        return "nothing to cancel"
    adapter = adapter_for(dispatch.adapter)
    try:
        adapter.cancel(dispatch.external_id)
    except Unsupported as exc:
        return str(exc)
    return "cancelled"


def push_review(review_id: int) -> str:
    """Tell the platform the owner's decision; on a paid acceptance, mark the job paid."""
    review = db.session.get(Review, review_id)
    if review is None:
        return "gone"
    delivery = review.delivery
    dispatch = delivery.dispatch
    if dispatch is None or not dispatch.external_id:
        return "not a platform delivery"
    adapter = adapter_for(dispatch.adapter)
    ref = DeliveryRef(dispatch.external_id, delivery.external_id)
    if review.decision == "accept":
        adapter.accept(ref, review.payout_cents)
        job = delivery.job
        if job.status == Status.ACCEPTED:
            lifecycle.transition(
                job, "pay", actor=f"adapter:{dispatch.adapter}", data={"review_id": review.id}
            )
            db.session.commit()
    elif review.decision == "reject":
        adapter.reject(ref, review.feedback)
    elif review.decision == "revise":
        adapter.request_revision(ref, review.feedback)
    return review.decision


__all__ = ["backoff", "cancel_at_platform", "claim", "push_review", "send_dispatch", "send_job_id"]
