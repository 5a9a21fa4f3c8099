"""send_dispatch against the real sandbox: placed once, whatever fails on the way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Retry

from dispatch.helpers import delegated, staged
from dispatcher.dispatch import backoff, channels, send, service
from dispatcher.dispatch.breaker import breaker_for, breaker_key
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, DispatchState, Event
from dispatcher.models._base import utcnow


def make_due(dispatch: Dispatch) -> None:
    """Let the lease or the backoff run out (the tests do not wait for the clock)."""
    db.session.refresh(dispatch)
    dispatch.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def orders_for(sandbox, dispatch: Dispatch) -> int:
    return sandbox.stats()["orders_by_key"].get(dispatch.idempotency_key, 0)


def events_of(job, kind: str) -> list[Event]:
    return db.session.query(Event).filter_by(job_id=job.id, kind=kind).all()


def test_places_the_order_once_and_moves_the_job(goal, paused):
    job = delegated(goal, price=1500)
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "placed"
    assert send.send_dispatch(dispatch.id) == "skipped: placed"
    db.session.refresh(dispatch)
    assert dispatch.state == DispatchState.PLACED and dispatch.external_id.startswith("ord_")
    assert dispatch.next_attempt_at is None
    assert job.status == Status.DISPATCHED
    assert paused.stats()["orders"] == 1


def test_a_worker_that_died_mid_call_is_recovered_by_look_up(goal, paused):
    job = delegated(goal)
    dispatch = staged(job)
    # A worker claims it, the platform makes the order, and the worker dies before recording.
    claimed = send.claim(dispatch.id)
    adapter = channels.guarded_adapter(claimed)
    adapter.dispatch(channels.job_spec(job, claimed), claimed.idempotency_key)
    db.session.rollback()

    retried = send.send_dispatch(dispatch.id)  # RQ's retry of the abandoned job
    assert isinstance(retried, Retry)  # the dead worker's lease still holds: wait for it
    assert orders_for(paused, dispatch) == 1

    make_due(dispatch)  # the lease runs out
    assert send.send_dispatch(dispatch.id) == "adopted"
    db.session.refresh(dispatch)
    assert dispatch.attempts == 2
    assert dispatch.state == DispatchState.PLACED
    assert paused.stats()["orders"] == 1  # no second order
    assert events_of(job, "dispatched")[0].data["adopted"] is True


@pytest.mark.parametrize(
    "fault", [{"stall_rate": 1, "stall_seconds": 1.6}, {"fail_after_create_rate": 1}]
)
def test_an_order_made_by_a_failed_call_is_adopted_not_repeated(goal, paused, fault):
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    paused.control(**fault)
    assert isinstance(send.send_dispatch(dispatch.id), Retry)
    db.session.refresh(dispatch)
    assert dispatch.state == DispatchState.PENDING and dispatch.last_error
    assert dispatch.next_attempt_at > utcnow()
    paused.control(stall_rate=0, fail_after_create_rate=0)
    make_due(dispatch)
    assert send.send_dispatch(dispatch.id) == "adopted"
    assert paused.stats()["orders"] == 1


def test_a_503_before_creating_is_retried_and_creates_once(goal, paused):
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    paused.control(fail_rate=1)
    assert isinstance(send.send_dispatch(dispatch.id), Retry)
    paused.control(fail_rate=0)
    make_due(dispatch)
    assert send.send_dispatch(dispatch.id) == "placed"  # looked up first, found nothing
    assert paused.stats()["orders"] == 1


def test_retries_are_bounded_then_the_dispatch_fails_with_the_reason(goal, paused):
    job = delegated(goal, price=2000)
    dispatch = service.dispatch_job(job)
    paused.control(fail_rate=1)
    outcomes = []
    for _ in range(10):
        outcome = send.send_dispatch(dispatch.id)
        outcomes.append(outcome)
        if outcome == "failed":
            break
        make_due(dispatch)
    assert outcomes[-1] == "failed" and len(outcomes) == 4  # dispatch_max_attempts
    db.session.refresh(dispatch)
    db.session.refresh(goal)
    assert dispatch.state == DispatchState.FAILED
    assert "gave up after 4 attempts" in dispatch.last_error and "503" in dispatch.last_error
    assert job.status == Status.FAILED
    assert "503" in events_of(job, "fail")[0].data["reason"]
    assert goal.reserved_cents == 0
    # The owner can send it again: a new dispatch under a new key.
    paused.control(fail_rate=0)
    again = service.retry_job(job)
    assert again.idempotency_key != dispatch.idempotency_key
    assert send.send_dispatch(again.id) in ("placed", "adopted")
    db.session.refresh(goal)
    assert goal.reserved_cents == 2000 and job.status == Status.DISPATCHED


def test_a_refusal_fails_at_once_with_the_platforms_reason(goal, paused):
    job = delegated(goal, title="x" * 250)  # the sandbox takes titles up to 200 characters
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "failed"
    db.session.refresh(dispatch)
    assert dispatch.attempts == 1
    assert "HTTP 422" in dispatch.last_error and "title" in dispatch.last_error
    assert job.status == Status.FAILED
    assert dispatch.next_attempt_at is None  # a first attempt refused: nothing to clean up


def test_429_waits_at_least_retry_after(goal, paused):
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    paused.control(rate_limit_rate=1)
    before = utcnow()
    assert isinstance(send.send_dispatch(dispatch.id), Retry)
    db.session.refresh(dispatch)
    assert dispatch.next_attempt_at - before >= timedelta(seconds=1)  # Retry-After: 1
    assert "429" in dispatch.last_error


def test_an_open_circuit_pauses_without_using_up_attempts(goal, paused):
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    breaker = breaker_for(breaker_key("sandbox", dispatch.connection_id))
    for _ in range(breaker.threshold):
        breaker.record_failure()
    outcome = send.send_dispatch(dispatch.id)
    assert isinstance(outcome, Retry)
    db.session.refresh(dispatch)
    assert dispatch.attempts == 0
    assert "circuit open" in dispatch.last_error
    assert dispatch.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert paused.stats()["orders"] == 0


def test_two_claims_never_hold_one_dispatch(goal, paused):
    dispatch = staged(delegated(goal))
    assert send.claim(dispatch.id) is not None
    assert send.claim(dispatch.id) is None


def test_backoff_is_exponential_jittered_and_bounded():
    for attempt in range(1, 12):
        ceiling = min(backoff.BACKOFF_CAP, backoff.BACKOFF_BASE * 2 ** (attempt - 1))
        samples = {backoff.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(samples) > 40  # jitter: no two workers come back in step
    assert max(backoff.backoff(50) for _ in range(100)) <= backoff.BACKOFF_CAP


def test_backoff_honours_retry_after_with_a_cap():
    assert 30 <= backoff.backoff(1, retry_after=30) <= 31
    assert backoff.backoff(1, retry_after=10**6) <= backoff.RETRY_AFTER_CAP + 1
    assert 2 <= backoff.backoff(2, retry_after=0.5) <= 4  # the longer of the two


def test_timeouts_and_lease_follow_the_settings(app):
    settings = app.config["SETTINGS"]
    budget = 2 * (settings.http_connect_timeout + settings.http_read_timeout)
    assert backoff.call_timeout(settings) > budget
    assert backoff.lease(settings).total_seconds() > backoff.call_timeout(settings)


def test_a_claim_is_one_update_returning_and_reads_nothing_back(goal, paused):
    """Issue 12: the claim was UPDATE, commit, get, refresh. Now it is one UPDATE ...
    RETURNING; the claimed row's fields are there after the commit without another SELECT,
    and they are the ones just written."""
    from sqlalchemy import event

    dispatch = staged(delegated(goal))
    dispatch_id, key = dispatch.id, dispatch.idempotency_key
    db.session.remove()
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()).upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        claimed = send.claim(dispatch_id)
        seen = (claimed.attempts, claimed.idempotency_key, claimed.state, claimed.next_attempt_at)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    touching = [s.split(" ")[0] for s in statements if "DISPATCHES" in s]
    assert touching == ["UPDATE"]
    assert "RETURNING" in next(s for s in statements if "DISPATCHES" in s)
    assert seen[:3] == (1, key, DispatchState.PENDING)
    assert seen[3] > utcnow() + timedelta(seconds=10)  # the lease just taken
    db.session.remove()
    assert db.session.get(Dispatch, dispatch_id).attempts == 1
