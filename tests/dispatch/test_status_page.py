"""The status page: breakers, queues, the owner's stuck and failed dispatches, quarantined
webhooks with "try again" — and nothing of another owner's."""

from __future__ import annotations

import pytest
import redis
from fakes.connections import connect_sandbox
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatch.helpers import delegated, make_owner
from dispatcher.dispatch import send, service
from dispatcher.dispatch.breaker import breaker_for, breaker_key
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import DispatchState, InboundEvent
from dispatcher.planning import tree


@pytest.fixture
def browser(client, owner):
    response = client.post("/login", data={"email": owner.email, "password": "correct horse"})
    assert response.status_code in (302, 303), response.get_data(as_text=True)[:500]
    return client


def failed_dispatch(goal, sandbox, title="refused job"):
    job = delegated(goal, title=title + " " + "x" * 200)  # too long a title: refused for good
    dispatch = service.dispatch_job(job)
    assert send.send_dispatch(dispatch.id) == "failed"
    db.session.refresh(dispatch)
    return job, dispatch


def quarantined_about(dispatch, event_id="msg_q") -> InboundEvent:
    body = (
        '{"id": "evt_q", "type": "order.taken", "created_at": "2026-01-01T00:00:00+00:00",'
        f' "data": {{"order_id": "{dispatch.external_id}"}}}}'
    )
    event = InboundEvent(
        adapter="sandbox", event_id=event_id, body=body, status="quarantined",
        attempts=5, error="RuntimeError: bug in apply",
    )  # fmt: skip
    db.session.add(event)
    db.session.commit()
    return event


def test_it_needs_a_login(client):
    response = client.get("/status")
    assert response.status_code in (302, 401)


def test_breakers_and_queues(browser, goal, sandbox):
    sandbox.control(pause_workers=True)
    dispatch = service.dispatch_job(delegated(goal, title="waiting its turn"))
    breaker = breaker_for(breaker_key("sandbox", dispatch.connection_id))
    for _ in range(breaker.threshold):
        breaker.record_failure()
    page = browser.get("/status").get_data(as_text=True)
    assert (
        f'id="breaker-{dispatch.connection_id}"' in page
        and ">open<" in page
        and "calls paused" in page
    )
    assert 'id="queue-dispatch"' in page
    assert "waiting its turn" in page  # pending, with its (empty) last answer


def test_a_failed_dispatch_shows_the_reason_and_can_be_sent_again(browser, goal, sandbox):
    sandbox.control(pause_workers=True)
    job, dispatch = failed_dispatch(goal, sandbox)
    page = browser.get("/status").get_data(as_text=True)
    assert f'id="failed-{dispatch.id}"' in page and "HTTP 422" in page and "Send again" in page
    response = browser.post(f"/status/dispatches/{dispatch.id}/retry")
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(type(job), job.id).status == Status.QUEUED
    again = browser.post(f"/status/dispatches/{dispatch.id}/retry", follow_redirects=True)
    assert "Cannot requeue" in again.get_data(as_text=True)  # a message, not an error page


def test_a_quarantined_webhook_can_be_tried_again(browser, goal, sandbox):
    sandbox.control(pause_workers=True)
    job = delegated(goal, title="taken job")
    dispatch = service.dispatch_job(job)
    send.send_dispatch(dispatch.id)
    db.session.refresh(dispatch)
    event = quarantined_about(dispatch)
    page = browser.get("/status").get_data(as_text=True)
    assert f'id="inbound-{event.id}"' in page and "bug in apply" in page and "taken job" in page
    assert browser.post(f"/status/inbound/{event.id}/retry").status_code == 303
    db.session.expire_all()
    event = db.session.get(InboundEvent, event.id)
    assert event.status == "received" and event.attempts == 0


def test_another_owners_rows_are_not_shown_nor_retried(browser, sandbox):
    sandbox.control(pause_workers=True)
    bob = make_owner("bob@example.com")
    connect_sandbox(bob.id, sandbox.base_url)
    bobs_goal = tree.create_goal(bob.id, title="Bob's", budget_cents=10_000)
    _, bobs_failed = failed_dispatch(bobs_goal, sandbox, title="bob's refused")
    placed = service.dispatch_job(delegated(bobs_goal, title="bob's placed"))
    send.send_dispatch(placed.id)
    db.session.refresh(placed)
    bobs_event = quarantined_about(placed, event_id="msg_bob")
    page = browser.get("/status").get_data(as_text=True)
    assert "bob&#39;s" not in page and "bob's" not in page
    assert 'id="others-quarantined"' in page
    assert browser.post(f"/status/dispatches/{bobs_failed.id}/retry").status_code == 404
    assert browser.post(f"/status/inbound/{bobs_event.id}/retry").status_code == 404
    db.session.expire_all()
    assert db.session.get(InboundEvent, bobs_event.id).status == "quarantined"
    assert db.session.get(type(bobs_failed), bobs_failed.id).state == DispatchState.FAILED


def test_the_page_works_while_redis_is_down(app, browser):
    app.extensions["dispatcher.redis"] = redis.Redis(
        unix_socket_path="/nonexistent.sock", retry=Retry(NoBackoff(), 0)
    )
    response = browser.get("/status")
    assert response.status_code == 200
    assert 'id="redis-down"' in response.get_data(as_text=True)
