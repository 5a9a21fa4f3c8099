"""Cancels owed to a platform. A dispatch that is not PENDING but has `next_attempt_at` set
owes the platform a cancel (`owe_cancel` marks it); `cancel_at_platform`, an RQ task by id,
looks the order up if need be and cancels it, idempotently; the reconciler keeps enqueueing
it until it is settled."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from rq import Retry

from adapters.base import (
    Capability,
)
from dispatcher.dispatch import first_attempt
from dispatcher.dispatch.backoff import CRASH_RETRY, backoff_for, call_timeout, reschedule
from dispatcher.dispatch.channels import adapter_for, guarded_adapter
from dispatcher.errors import AdapterError, RetryableAdapterError, Unsupported
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.models import Dispatch, DispatchState
from dispatcher.queues import DISPATCH, enqueue_once
from dispatcher.redis_clock import shared_utcnow

log = logging.getLogger(__name__)


def cancel_job_id(dispatch_id: int) -> str:
    return f"cancel-{dispatch_id}"


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


def owe_cancel(dispatch: Dispatch) -> str:
    """Mark a dispatch that is being closed as owing the platform a cancel, if an order may
    exist there; returns what the owner should be told. The caller commits, then calls
    `enqueue_cancel`."""
    if dispatch.external_id is None and dispatch.attempts == 1 and first_attempt.withdraw(dispatch):
        dispatch.attempts = 0  # its request's lease, given back before any call
    if dispatch.external_id is None and dispatch.attempts == 0:
        dispatch.next_attempt_at = None  # no call was made: nothing owed, nothing leased
        return ""
    adapter = adapter_for(dispatch)
    if not adapter.supports(Capability.CANCEL):
        return f"{dispatch.adapter} cannot cancel orders through its API: cancel it there by hand"
    dispatch.next_attempt_at = shared_utcnow()
    return "the order is being cancelled at the platform"


def cancel_at_platform(dispatch_id: int) -> str | Retry:
    """Cancel whatever order a closed dispatch left at the platform; idempotent."""
    dispatch = db.session.get(Dispatch, dispatch_id)
    if dispatch is None or dispatch.next_attempt_at is None:
        return "nothing owed"
    if dispatch.state in (DispatchState.PENDING, DispatchState.PLACED):
        return f"not cancelling a {dispatch.state} dispatch"
    now = shared_utcnow()
    if dispatch.next_attempt_at > now:
        return reschedule(dispatch.next_attempt_at, now)
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
        at = now + timedelta(seconds=backoff_for(settings, 3, exc.retry_after))
        dispatch.next_attempt_at = at
        dispatch.last_error = f"cancel: {exc}"[:2000]
        db.session.commit()
        return reschedule(at, now)
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
