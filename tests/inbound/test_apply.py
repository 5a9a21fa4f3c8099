"""The apply step: out of order, twice, before the order is known, and when it keeps failing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from dispatch.helpers import delegated, hook_url, signed_webhook, staged
from fakes.sandbox_fixture import SECRET, wait_until
from rq import Retry

from adapters import standard_webhooks
from adapters.base import AdapterRegistry
from adapters.sandbox import SandboxAdapter
from dispatcher.dispatch import channels, push, review, send, service
from dispatcher.errors import PayloadError
from dispatcher.extensions import db
from dispatcher.inbound import apply
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, DispatchState, Event, InboundEvent
from dispatcher.models._base import utcnow


@pytest.fixture
def placed(goal, sandbox):
    sandbox.control(pause_workers=True)  # we play the platform's webhooks by hand
    job = delegated(goal, price=1200)
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "placed"
    db.session.refresh(dispatch)
    return job, dispatch


def deliver(client, type_, order_id, **kw) -> InboundEvent:
    headers, body = signed_webhook(type_, order_id, **kw)
    response = client.post(hook_url(), data=body, headers=headers)
    assert response.status_code in (200, 202), response.json
    return db.session.query(InboundEvent).order_by(InboundEvent.id.desc()).first()


def transitions(job, kind: str) -> int:
    return db.session.query(Event).filter_by(job_id=job.id, kind=kind).count()


def test_delivered_before_taken_lands_in_delivered(client, placed, run_jobs):
    job, dispatch = placed
    deliver(client, "order.delivered", dispatch.external_id, submission_id="sub_1")
    deliver(client, "order.taken", dispatch.external_id)
    run_jobs()
    db.session.refresh(job)
    assert job.status == Status.DELIVERED
    assert transitions(job, "taken") == 0 and transitions(job, "delivered") == 1
    assert {e.status for e in db.session.query(InboundEvent)} == {"applied"}


def test_the_same_submission_twice_is_recorded_once(client, placed, run_jobs):
    job, dispatch = placed
    deliver(client, "order.delivered", dispatch.external_id, submission_id="sub_1")
    # the platform's retry of the same event under a new delivery id
    deliver(client, "order.delivered", dispatch.external_id, submission_id="sub_1")
    run_jobs()
    assert db.session.query(Delivery).filter_by(job_id=job.id).count() == 1
    assert transitions(job, "delivered") == 1


def test_a_delivery_after_acceptance_is_kept_as_late(client, placed, run_jobs):
    job, dispatch = placed
    deliver(client, "order.delivered", dispatch.external_id, submission_id="sub_1")
    run_jobs()
    review.accept(db.session.query(Delivery).one(), rating=5)
    deliver(client, "order.delivered", dispatch.external_id, submission_id="sub_2")
    apply.apply_inbound(db.session.query(InboundEvent).order_by(InboundEvent.id.desc()).first().id)
    db.session.refresh(job)
    assert job.status in (Status.ACCEPTED, Status.PAID)
    late = db.session.query(Delivery).filter_by(external_id="sub_2").one()
    assert late.status == "late"
    assert transitions(job, "late_delivery") == 1 and transitions(job, "delivered") == 1


def forward(client, sandbox, order_id: str, type_: str) -> None:
    """Post the platform's own event of `type_` (once it exists) as its webhook would."""
    event = wait_until(
        lambda: next((e for e in sandbox.market.events(order_id) if e["type"] == type_), None)
    )
    body = json.dumps(event).encode()
    headers = standard_webhooks.sign(SECRET, event["id"], None, body)
    assert client.post(hook_url(), data=body, headers=headers).status_code in (200, 202)


def test_paid_from_the_webhook_and_from_the_push_pays_once(client, goal, sandbox, run_jobs):
    job = delegated(goal, price=1200)
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "placed"  # the sandbox's workers take it
    db.session.refresh(dispatch)
    forward(client, sandbox, dispatch.external_id, "order.delivered")
    run_jobs()
    accepted = review.accept(db.session.query(Delivery).one(), rating=5)
    run_jobs()  # push_review: the platform pays, and marks the job paid
    forward(client, sandbox, dispatch.external_id, "submission.paid")
    run_jobs()  # the platform's "paid" arrives too
    assert push.push_review(accepted.id) == "already pushed"  # a repeat asks nothing more
    db.session.refresh(job)
    assert job.status == Status.PAID
    assert transitions(job, "pay") == 1
    stats = sandbox.stats()
    assert (stats["payments"], stats["double_payments"]) == (1, 0)
    assert "review_replays" not in stats["counters"]


def test_an_expired_order_releases_the_money(client, placed, run_jobs, goal):
    job, dispatch = placed
    deliver(client, "order.expired", dispatch.external_id)
    run_jobs()
    db.session.refresh(goal)
    db.session.refresh(dispatch)
    assert job.status == Status.EXPIRED and goal.reserved_cents == 0
    assert dispatch.state == DispatchState.CLOSED
    assert dispatch.next_attempt_at is None  # the platform expired it: nothing to cancel
    deliver(client, "order.expired", dispatch.external_id)
    run_jobs()
    db.session.refresh(goal)
    assert goal.reserved_cents == 0 and transitions(job, "expire") == 1


def test_an_event_for_an_order_not_recorded_yet_waits_for_it(client, goal, sandbox):
    sandbox.control(pause_workers=True)
    job = delegated(goal)
    dispatch = staged(job)
    claimed = send.claim(dispatch.id)  # the worker makes the order, then dies
    receipt = channels.guarded_adapter(claimed).dispatch(
        channels.job_spec(job, claimed), claimed.idempotency_key
    )
    db.session.rollback()
    inbound = deliver(client, "order.delivered", receipt.external_id, submission_id="sub_1")
    outcome = apply.apply_inbound(inbound.id)
    assert isinstance(outcome, Retry)
    db.session.refresh(inbound)
    assert inbound.status == "received" and inbound.attempts == 0
    assert inbound.error.startswith("waiting:")
    for _ in range(3 * apply.MAX_APPLY_ATTEMPTS):  # waiting never quarantines early
        assert isinstance(apply.apply_inbound(inbound.id), Retry)
    dispatch.next_attempt_at = utcnow() - timedelta(seconds=1)  # the dead worker's lease ends
    db.session.commit()
    assert send.send_dispatch(dispatch.id) == "adopted"
    assert apply.apply_inbound(inbound.id) == "applied"
    db.session.refresh(job)
    assert job.status == Status.DELIVERED


def test_waiting_too_long_quarantines(client, placed):
    inbound = deliver(client, "order.taken", "ord_never_made")
    inbound.received_at = utcnow() - apply.WAIT_FOR_ORDER - timedelta(minutes=1)
    db.session.commit()
    assert apply.apply_inbound(inbound.id) == "quarantined"


class ChangedSandbox(SandboxAdapter):
    """An adapter upgrade that can no longer read what was stored."""

    def parse(self, headers, body):
        raise PayloadError("schema changed")


def test_an_event_that_keeps_failing_is_quarantined_and_can_be_retried(app, client, placed):
    job, dispatch = placed
    inbound = deliver(client, "order.taken", dispatch.external_id)
    original = app.extensions["dispatcher.adapters"]
    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        app.config["SETTINGS"], classes={"sandbox": ChangedSandbox}
    )
    for _ in range(apply.MAX_APPLY_ATTEMPTS - 1):
        with pytest.raises(PayloadError):
            apply.apply_inbound(inbound.id)
    assert apply.apply_inbound(inbound.id) == "quarantined"
    db.session.refresh(inbound)
    assert inbound.status == "quarantined" and "schema changed" in inbound.error
    assert apply.apply_inbound(inbound.id) == "nothing to do"  # not retried forever

    app.extensions["dispatcher.adapters"] = original  # fixed: the owner sends it again
    apply.retry_quarantined(inbound)
    assert inbound.status == "received" and inbound.attempts == 0
    assert apply.apply_inbound(inbound.id) == "applied"
    db.session.refresh(job)
    assert job.status == Status.TAKEN


def test_quarantine_is_noted_on_the_job(app, client, placed):
    job, dispatch = placed
    inbound = deliver(client, "order.taken", dispatch.external_id)
    inbound.attempts = apply.MAX_APPLY_ATTEMPTS - 1
    db.session.commit()
    original = apply.apply_event

    def broken(adapter_name, event, **where):
        raise RuntimeError("bug in apply")

    apply.apply_event = broken
    try:
        assert apply.apply_inbound(inbound.id) == "quarantined"
    finally:
        apply.apply_event = original
    [noted] = db.session.query(Event).filter_by(job_id=job.id, kind="inbound_quarantined").all()
    assert noted.data["inbound_id"] == inbound.id and "bug in apply" in noted.data["error"]


class BuggySandbox(SandboxAdapter):
    def parse(self, headers, body):
        raise RuntimeError("parser bug")


def test_a_parser_bug_is_quarantined_too(app, client, placed):
    job, dispatch = placed
    inbound = deliver(client, "order.taken", dispatch.external_id)
    inbound.attempts = apply.MAX_APPLY_ATTEMPTS - 1
    db.session.commit()
    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        app.config["SETTINGS"], classes={"sandbox": BuggySandbox}
    )
    assert apply.apply_inbound(inbound.id) == "quarantined"
    db.session.refresh(inbound)
    assert inbound.status == "quarantined" and "parser bug" in inbound.error
