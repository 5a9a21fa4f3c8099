"""Cancel at the platform when it can (and say so when it cannot); expiry releases money."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fakes.work import event

from adapters.base import AdapterRegistry, Capability, EventKind
from adapters.sandbox import SandboxAdapter
from dispatch.helpers import delegated, staged
from dispatcher.dispatch import cancel, channels, maintenance, send, service
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.lifecycle import Status
from dispatcher.models import DispatchState, Event
from dispatcher.models._base import utcnow


class NoCancelSandbox(SandboxAdapter):
    """The sandbox, seen through an adapter for a platform whose API cannot cancel."""

    capabilities = SandboxAdapter.capabilities - {Capability.CANCEL}


def placed_job(goal, **fields):
    job = delegated(goal, **fields)
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "placed"
    db.session.refresh(dispatch)
    return job, dispatch


def order_status(sandbox, dispatch) -> str:
    return sandbox.market.get_order(dispatch.external_id)["status"]


def platform_notes(job) -> list[dict]:
    return [
        e.data for e in db.session.query(Event).filter_by(job_id=job.id, kind="platform_cancel")
    ]


def test_cancel_cancels_the_order_at_the_platform(goal, paused):
    job, dispatch = placed_job(goal, price=3000)
    message = service.cancel_job(job)
    assert message == "the order is being cancelled at the platform"
    db.session.refresh(goal)
    assert goal.reserved_cents == 0 and job.status == Status.CANCELLED
    assert dispatch.next_attempt_at is not None  # a cancel is owed
    assert cancel.cancel_at_platform(dispatch.id) == "cancelled at the platform"
    assert order_status(paused, dispatch) == "cancelled"
    db.session.refresh(dispatch)
    assert dispatch.next_attempt_at is None
    assert platform_notes(job)[0]["outcome"] == "cancelled at the platform"
    assert cancel.cancel_at_platform(dispatch.id) == "nothing owed"


def test_cancel_on_a_platform_that_cannot_tells_the_owner(app, goal, paused):
    settings = app.config["SETTINGS"]
    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        settings, classes={"sandbox": NoCancelSandbox}
    )
    job, dispatch = placed_job(goal)
    message = service.cancel_job(job)
    assert "cannot cancel orders through its API" in message and "by hand" in message
    db.session.refresh(dispatch)
    assert dispatch.state == DispatchState.CANCELLED
    assert dispatch.next_attempt_at is None  # nothing the reconciler could do
    assert order_status(paused, dispatch) == "open"
    cancel_event = db.session.query(Event).filter_by(job_id=job.id, kind="cancel").one()
    assert "by hand" in cancel_event.data["platform"]


def test_an_order_placed_while_the_owner_cancelled_is_cancelled_too(goal, paused):
    job = delegated(goal)
    dispatch = staged(job)
    claimed = send.claim(dispatch.id)  # a worker is mid-call...
    adapter = channels.guarded_adapter(claimed)
    receipt = adapter.dispatch(channels.job_spec(job, claimed), claimed.idempotency_key)
    db.session.rollback()
    service.cancel_job(job)  # ...when the owner cancels
    outcome = send._placed(db.session.get(type(dispatch), dispatch.id), receipt, False)
    assert outcome == "placed after it was cancelled: cancelling"
    db.session.refresh(dispatch)
    assert dispatch.state == DispatchState.CANCELLED
    assert dispatch.external_id == receipt.external_id
    assert cancel.cancel_at_platform(dispatch.id) == "cancelled at the platform"
    assert order_status(paused, dispatch) == "cancelled"
    assert job.status == Status.CANCELLED


def test_a_cancel_while_the_platform_is_down_is_retried(goal, paused):
    job, dispatch = placed_job(goal)
    service.cancel_job(job)
    paused.stop()  # the platform goes away
    outcome = cancel.cancel_at_platform(dispatch.id)
    assert not isinstance(outcome, str)  # rescheduled, not settled
    db.session.refresh(dispatch)
    assert dispatch.next_attempt_at > utcnow() and "cancel:" in dispatch.last_error


def test_no_taker_by_the_deadline_expires_and_releases_the_money(goal, paused):
    job, dispatch = placed_job(goal, price=2500, due_date=date.today() - timedelta(days=1))
    db.session.refresh(goal)
    assert goal.reserved_cents == 2500
    assert maintenance.expire_overdue() == 1
    db.session.refresh(goal)
    db.session.refresh(dispatch)
    assert job.status == Status.EXPIRED
    assert goal.reserved_cents == 0 and job.reserved_cents == 0
    assert dispatch.state == DispatchState.CLOSED
    assert cancel.cancel_at_platform(dispatch.id) == "cancelled at the platform"
    assert order_status(paused, dispatch) == "cancelled"
    assert maintenance.expire_overdue() == 0


def test_expires_at_on_the_dispatch_wins_and_taken_jobs_do_not_expire(goal, paused):
    job, dispatch = placed_job(goal)
    dispatch.expires_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert maintenance.expire_overdue() == 0
    dispatch.expires_at = utcnow() - timedelta(seconds=1)
    apply_event("sandbox", event(dispatch, EventKind.TAKEN, event_id="t1", worker="w1"))
    db.session.commit()  # someone took it in time
    assert job.status == Status.TAKEN
    assert maintenance.expire_overdue() == 0
    apply_event("sandbox", event(dispatch, EventKind.WITHDRAWN, event_id="w1", worker="w1"))
    db.session.commit()  # and gave it back: open again, past its deadline
    assert job.status == Status.DISPATCHED
    assert maintenance.expire_overdue() == 1


def test_a_job_never_placed_expires_without_bothering_the_platform(goal, paused):
    job = delegated(goal, due_date=date.today() - timedelta(days=2))
    dispatch = service.dispatch_job(job)
    assert maintenance.expire_overdue() == 1
    db.session.refresh(dispatch)
    db.session.refresh(goal)
    assert job.status == Status.EXPIRED and goal.reserved_cents == 0
    assert dispatch.next_attempt_at is None
    assert send.send_dispatch(dispatch.id) == "skipped: cancelled"
    assert paused.stats()["orders"] == 0


def _due_job_of(goal, owner, timezone: str, due: date):
    owner.timezone = timezone
    db.session.commit()
    job = delegated(goal, due_date=due)
    service.dispatch_job(job)
    return job


def test_expiry_waits_for_the_end_of_the_due_date_in_the_owners_zone(goal, owner):
    """Los Angeles is 8 hours behind UTC in December: 03:00 UTC on the 11th is still the
    10th there, so a job due on the 10th has not run out yet."""
    job = _due_job_of(goal, owner, "America/Los_Angeles", date(2026, 12, 10))
    assert maintenance.expire_overdue(datetime(2026, 12, 11, 3, tzinfo=UTC)) == 0
    assert maintenance.expire_overdue(datetime(2026, 12, 11, 7, 59, tzinfo=UTC)) == 0
    assert maintenance.expire_overdue(datetime(2026, 12, 11, 8, 0, tzinfo=UTC)) == 1
    db.session.refresh(job)
    assert job.status == Status.EXPIRED


def test_expiry_comes_when_the_due_date_ends_in_the_owners_zone(goal, owner):
    """Auckland is 13 hours ahead of UTC in December: 11:00 UTC on the 10th is already the
    11th there, so a job due on the 10th has run out, though the 10th goes on in UTC."""
    job = _due_job_of(goal, owner, "Pacific/Auckland", date(2026, 12, 10))
    assert maintenance.expire_overdue(datetime(2026, 12, 10, 10, 59, tzinfo=UTC)) == 0
    assert maintenance.expire_overdue(datetime(2026, 12, 10, 11, 0, tzinfo=UTC)) == 1
    db.session.refresh(job)
    assert job.status == Status.EXPIRED
