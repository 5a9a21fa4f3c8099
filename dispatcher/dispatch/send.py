"""Sending a dispatch to its platform: the `send_dispatch` task (RQ, by id; STYLE 7).

`send_dispatch` is the effectively-once path (DESIGN rule 3):

1. It claims the dispatch with a lease (`next_attempt_at`) in one conditional UPDATE that
   also counts the attempt, and commits before calling out. Two workers never hold the same
   dispatch; a worker that dies leaves a lease that runs out, never a lock held forever.
   A lone dispatch's first lease was written by its request instead; the run that takes its
   one-use token holds it (first_attempt.py), and calls with what the token carries before
   any statement (carried.py).
2. Any attempt after the first may follow one that reached the platform (a timeout, a 5xx
   after the order was made, a worker killed mid-call), so it looks the idempotency key up
   first and adopts the order it finds instead of placing another.
3. Retryable failures back off exponentially with jitter, stored in the database
   (`next_attempt_at`) and scheduled in RQ by returning a `Retry` under the same job id, up
   to `dispatch_max_attempts`; then, or on a permanent refusal, the dispatch fails with the
   platform's reason and its money is released.
4. Placing is a conditional UPDATE too: if the owner cancelled (or the job expired) while
   the call was out, the order just made is cancelled at the platform rather than kept.
5. One task may do this for several due dispatches of the same channel (DISPATCH_BATCH):
   one claim and one commit for their placements, each dispatch otherwise on its own
   (send_batch.py says why and how).

Cancels owed to a platform are cancel.py's; review pushes are push.py's."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta

from flask import current_app
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import select, update

from adapters.base import Adapter, Capability, Receipt
from dispatcher import lifecycle
from dispatcher.dispatch import carried, first_attempt, places, send_batch
from dispatcher.dispatch.backoff import CRASH_RETRY, backoff_for, call_timeout, reschedule
from dispatcher.dispatch.cancel import enqueue_cancel
from dispatcher.dispatch.channels import guarded_adapter, job_spec
from dispatcher.errors import AdapterError, CircuitOpen, RetryableAdapterError
from dispatcher.extensions import db
from dispatcher.locking import lock_job
from dispatcher.models import Dispatch, DispatchState
from dispatcher.ops import logs, metrics
from dispatcher.queues import (
    DISPATCH,
    drop_queued,
    enqueue_many_once,
    enqueue_many_once_sent,
    enqueue_quietly,
)
from dispatcher.redis_clock import SharedClock, shared_utcnow
from dispatcher.write_gate import write_gate

log = logging.getLogger(__name__)


def send_job_id(dispatch_id: int) -> str:
    """The one RQ job id of a dispatch: the same dispatch is never queued twice."""
    return f"dispatch-{dispatch_id}"


def enqueue_send(dispatch_id: int, *, also: Callable[[Pipeline], object] | None = None) -> bool:
    """Queue the send task (a no-op if it is already queued, scheduled or running), in one
    round trip with `also`'s commands (queues.enqueue_many_once).

    Raises RedisError; callers that run after a commit log it, since the reconciler will
    find the pending row again."""
    queued = enqueue_many_once(DISPATCH, send_dispatch, [_task(dispatch_id)], also=also,
                               **_task_options())  # fmt: skip
    return queued > 0


def enqueue_early(dispatch_id: int) -> Callable[[], bool]:
    """`enqueue_send` for a task queued before its request's commit, which waits for its
    token (first_attempt.queue_early): sent now, and whether it was queued read when the
    returned function is called (queues.enqueue_many_once_sent), so the request's statement
    runs meanwhile. Both raise RedisError."""
    answer = enqueue_many_once_sent(DISPATCH, send_dispatch, [_task(dispatch_id, early=True)],
                                    **_task_options())  # fmt: skip
    return lambda: answer() > 0


def _task(dispatch_id: int, *, early: bool = False) -> tuple[str, tuple]:
    """The send task's RQ job id and arguments (`early`: it waits for its token)."""
    return send_job_id(dispatch_id), (dispatch_id, True) if early else (dispatch_id,)


def _task_options() -> dict:
    return {"retry": CRASH_RETRY, "job_timeout": call_timeout(current_app.config["SETTINGS"])}


def claim(dispatch_id: int, clock: SharedClock | None = None) -> Dispatch | None:
    """Take the lease on one pending, due dispatch and count the attempt, then commit; None
    if it is held by another attempt, not due yet, or no longer pending (one UPDATE ...
    RETURNING; its values are kept through the commit, not read again). The lease is written
    and judged on Redis's clock (`clock`, the app's by default), so hosts whose clocks
    disagree neither overlap nor wait for each other."""
    with write_gate():
        claimed = send_batch.claim(dispatch_id, 1, clock)
        if not claimed:
            db.session.commit()
            return None
        send_batch.commit_keeping(claimed)
    return claimed[0]


@metrics.observe_dispatch
def send_dispatch(dispatch_id: int, early: bool = False) -> str | Retry:
    """Place one dispatch at its platform, safely under retries and worker deaths; with
    DISPATCH_BATCH > 1, also other due dispatches of its channel (send_batch.py). Returns
    this dispatch's own outcome (a `Retry` only for it). A lone dispatch whose request
    leased its first attempt is sent by the run that takes its token, without a claim
    (first_attempt.py); a task queued before that request's commit (`early`) waits for
    the token."""
    settings = current_app.config["SETTINGS"]
    prepared = None
    taken = first_attempt.wait(dispatch_id) if early else first_attempt.take(dispatch_id)
    if taken is not None:
        call = carried.decode(*taken)
        if call is not None:
            return _send_carried(dispatch_id, call)
        prepared = _prepare_leased(dispatch_id)
    if prepared is None:
        prepared = _claim_and_prepare(dispatch_id, settings.dispatch_batch)
    if prepared is None:
        outcome = _not_claimed(dispatch_id)
        if isinstance(outcome, Retry) and settings.dispatch_batch > 1:
            # held by another task's batch (or backing off): meanwhile, take the next due
            # dispatches of its channel, so a second worker works beside the first
            beside = _claim_and_prepare(dispatch_id, settings.dispatch_batch, beside=True)
            if beside is not None:
                _send_claimed(dispatch_id, *beside)
        return outcome
    outcomes = _send_claimed(dispatch_id, *prepared)
    if dispatch_id not in outcomes:
        return _not_claimed(dispatch_id)  # another worker claimed it just before us
    return outcomes[dispatch_id]


def _send_claimed(
    dispatch_id: int, claimed: list[Dispatch], adapter: Adapter, specs: dict
) -> dict[int, str | Retry]:
    """Call the platform for each claimed dispatch, record the placements in one commit,
    settle the failures one by one; each dispatch's outcome."""
    channel = claimed[0].adapter
    started, results = time.monotonic(), {}
    for dispatch in claimed:
        if dispatch.id in specs and (dispatch.id == dispatch_id or send_batch.in_time(started)):
            key, attempts = dispatch.idempotency_key, dispatch.attempts
            results[dispatch.id] = _call(adapter, key, attempts, specs[dispatch.id])
    send_batch.give_back([d.id for d in claimed if d.id not in results])
    return _record(dispatch_id, claimed, results, channel)


def _send_carried(dispatch_id: int, call: carried.Call) -> str | Retry:
    """The first attempt a token carried: call the platform at once, then load the dispatch
    (one read, off the way to the platform) and record the outcome as after a claim. A
    cancel or an expiry that came meanwhile is found there ("cancelling", cancel.py)."""
    metrics.label_dispatch(call.adapter)
    logs.bind(job_id=call.job_id, connection_id=call.connection_id)
    result = _call(carried.guarded(call), call.key, 1, call.spec)
    loaded = send_batch.preload_leased(dispatch_id)
    if not loaded:
        db.session.rollback()
        return "gone"
    send_batch.commit_keeping(loaded)
    return _record(dispatch_id, [loaded[0]], {dispatch_id: result}, call.adapter)[dispatch_id]


def _record(
    dispatch_id: int, claimed: list[Dispatch], results: dict, channel: str
) -> dict[int, str | Retry]:
    """After the calls: the placements in one commit, the failures settled one by one;
    each dispatch's outcome."""
    settings = current_app.config["SETTINGS"]
    placed = [(d, *results[d.id]) for d in claimed if isinstance(results.get(d.id), tuple)]
    by_id = {d.id: d for d in claimed}  # ids read now: the commit below expires the rows
    outcomes = send_batch.record_placed(placed) if placed else {}
    for ident, result in results.items():
        if isinstance(result, Exception):
            outcomes[ident] = _settle(by_id[ident], result, settings.dispatch_max_attempts)
    for other_id, outcome in outcomes.items():
        if other_id != dispatch_id:
            metrics.count_dispatch(channel, outcome)
    _drop_done_tasks(dispatch_id, outcomes)
    return outcomes


#: outcomes after which a dispatch's own queued task has nothing left to do
_DONE = ("placed", "adopted", "already placed")


def _drop_done_tasks(dispatch_id: int, outcomes: dict[int, str]) -> None:
    """The extras this task placed need their own queued tasks no more: take them out of the
    queue, so the worker does not spend an RQ round on each only to find it placed. Those
    already taken by a worker, and every extra not placed, keep their task. Best effort: a
    task left behind just finds its dispatch placed."""
    done = [send_job_id(i) for i, o in outcomes.items() if i != dispatch_id and o in _DONE]
    try:
        drop_queued(DISPATCH, done)
    except RedisError as exc:
        log.warning("could not drop the placed extras' tasks (%s); they will skip", exc)


def _claim_and_prepare(
    dispatch_id: int, size: int, *, beside: bool = False
) -> tuple[list[Dispatch], Adapter, dict] | None:
    """Claim the batch, load what the calls need and build their specs, in one short write
    transaction under the write gate; None if `dispatch_id` could not be claimed. No
    transaction stays open while the platform takes its time."""
    with write_gate():
        claimed = send_batch.claim(dispatch_id, size, beside=beside)
        if not claimed:
            db.session.commit()
            return None
        loaded = send_batch.preload(claimed)
        return _prepared(dispatch_id, claimed, loaded)


def _prepare_leased(dispatch_id: int) -> tuple[list[Dispatch], Adapter, dict] | None:
    """The first attempt its request leased: read the dispatch and what the call needs in
    one statement, no claim and no write; None (the claim path then decides) unless it is
    still pending on that first attempt, which an owner's cancel meanwhile changes."""
    loaded = send_batch.preload_leased(dispatch_id)
    dispatch = loaded[0] if loaded else None
    if dispatch is None or dispatch.state != DispatchState.PENDING or dispatch.attempts != 1:
        db.session.rollback()
        return None
    return _prepared(dispatch_id, [dispatch], loaded)


def _prepared(
    dispatch_id: int, claimed: list[Dispatch], loaded: list[object]
) -> tuple[list[Dispatch], Adapter, dict]:
    """Build the adapter and the specs of the held dispatches, then end the transaction
    (keeping what was read): no transaction stays open while the platform takes its time."""
    first = claimed[0]
    metrics.label_dispatch(first.adapter)
    logs.bind(job_id=first.job_id, connection_id=first.connection_id)
    adapter = guarded_adapter(first)  # one channel: the same adapter for every row
    specs = {}
    for dispatch in claimed:
        try:
            specs[dispatch.id] = job_spec(dispatch.job, dispatch)
        except Exception:
            if dispatch.id == dispatch_id:
                raise
            log.exception("dispatch %s: no job spec; left to its own task", dispatch.id)
    send_batch.commit_keeping(loaded)
    return claimed, adapter, specs


def _call(adapter, key: str, attempts: int, spec) -> tuple[Receipt, bool] | AdapterError:
    """Find (after a first attempt) then create: the receipt and whether it was adopted, or
    the adapter's error."""
    try:
        receipt = None
        if attempts > 1 and adapter.supports(Capability.FIND):
            receipt = adapter.find(key)
            if receipt is not None:
                return receipt, True
        return adapter.dispatch(spec, key), False
    except AdapterError as exc:
        return exc


def _placed(dispatch: Dispatch, receipt: Receipt, adopted: bool) -> str:
    """Record one placement (its own commit)."""
    return send_batch.record_placed([(dispatch, receipt, adopted)])[dispatch.id]


def _settle(dispatch: Dispatch, exc: AdapterError, max_attempts: int) -> str | Retry:
    """A failed call: wait for the breaker, back off, or fail (a permanent refusal)."""
    if isinstance(exc, CircuitOpen):
        return _wait_for_breaker(dispatch, exc)
    if isinstance(exc, RetryableAdapterError):
        return _retry_later(dispatch, exc, max_attempts)
    _fail(dispatch, str(exc), owe_cancel=dispatch.attempts > 1)
    return "failed"


def _not_claimed(dispatch_id: int) -> str | Retry:
    """Someone else holds the lease, or it is not due yet: come back then; else done (one
    small read: an order placed by another task's batch is skipped cheaply)."""
    row = db.session.execute(
        select(Dispatch.state, Dispatch.next_attempt_at, Dispatch.adapter).where(
            Dispatch.id == dispatch_id
        )
    ).first()
    db.session.rollback()
    if row is None:
        return "gone"
    metrics.label_dispatch(row.adapter)
    if row.state != DispatchState.PENDING:
        return f"skipped: {row.state}"
    now = shared_utcnow()
    return reschedule(row.next_attempt_at or now, now)


def _closed_meanwhile(dispatch: Dispatch) -> str | None:
    """The dispatch was cancelled or expired while an attempt that may have reached the
    platform was out: owe the platform a cancel again, since a cancel that ran meanwhile may
    have found no order yet (the create was still in flight). None if it is still pending."""
    db.session.rollback()
    db.session.refresh(dispatch)
    if dispatch.state == DispatchState.PENDING:
        return None
    if dispatch.state in (DispatchState.CANCELLED, DispatchState.CLOSED):
        dispatch.next_attempt_at = shared_utcnow()
        db.session.commit()
        enqueue_quietly(enqueue_cancel, dispatch.id)
        return f"{dispatch.state} while the attempt was out: cancel owed again"
    db.session.commit()
    return f"skipped: {dispatch.state}"


def _wait_for_breaker(dispatch: Dispatch, exc: CircuitOpen) -> Retry:
    """No call went out: give the attempt back and come back when the breaker may let us."""
    now = shared_utcnow()
    at = now + timedelta(seconds=(exc.retry_after or 1.0) + random.uniform(0.5, 3.0))
    db.session.execute(
        update(Dispatch)
        .where(Dispatch.id == dispatch.id, Dispatch.state == DispatchState.PENDING)
        .values(attempts=Dispatch.attempts - 1, next_attempt_at=at, last_error=str(exc))
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return reschedule(at, now)


def _retry_later(dispatch: Dispatch, exc: RetryableAdapterError, max_attempts: int) -> str | Retry:
    closed = _closed_meanwhile(dispatch)
    if closed is not None:
        return closed
    if dispatch.attempts >= max_attempts:
        _fail(dispatch, f"gave up after {dispatch.attempts} attempts: {exc}", owe_cancel=True)
        return "failed"
    settings = current_app.config["SETTINGS"]
    now = shared_utcnow()
    at = now + timedelta(seconds=backoff_for(settings, dispatch.attempts, exc.retry_after))
    db.session.execute(
        update(Dispatch)
        .where(Dispatch.id == dispatch.id, Dispatch.state == DispatchState.PENDING)
        .values(next_attempt_at=at, last_error=str(exc)[:2000])
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return reschedule(at, now)


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
    dispatch.next_attempt_at = shared_utcnow() if owe_cancel else None
    for place in dispatch.assignments:
        if place.status in places.IN_FLIGHT:
            places.move(place, "cancel", job, actor=actor)
    places.sync_job(job, actor=actor, data=data)
    db.session.commit()
    if owe_cancel:
        enqueue_quietly(enqueue_cancel, dispatch.id)
