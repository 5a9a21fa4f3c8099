"""The poller: channels without webhooks (or in polling mode) are read page by page, each
change stored once as an InboundEvent and applied through the webhook path; looks back off
while nothing changes and stop when nothing is open. Against the real sandbox in its
polling-only mode and the Microworkers fake, over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dispatch.helpers import delegated
from fakes.microworkers import API_KEY, FakeMicroworkers
from fakes.sandbox_fixture import wait_until
from sqlalchemy import func, select

import adapters.microworkers as mw
from dispatcher.dispatch import service
from dispatcher.extensions import db
from dispatcher.inbound import polling
from dispatcher.inbound.apply import dispatches_of
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Dispatch, InboundEvent, PollState


@pytest.fixture
def mw_fake():
    fake = FakeMicroworkers().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def polled_connections(owner, mw_fake):
    """The owner's sandbox connection asks for polling; a Microworkers account is connected
    (the fake's), polled as that platform has no webhooks."""
    from dispatcher import connections

    sandbox_connection = connections.for_adapter(owner.id, "sandbox")
    connections.change(sandbox_connection, options={"polling": True})
    connections.create(
        owner.id, "microworkers", "Microworkers", {"api_key": API_KEY},
        {"base_url": mw_fake.url, "template_id": "tpl1", "ttr_days": 3},
    )  # fmt: skip
    db.session.commit()


def _inbound(**where) -> list[InboundEvent]:
    query = select(InboundEvent).order_by(InboundEvent.id)
    for name, value in where.items():
        query = query.where(getattr(InboundEvent, name) == value)
    return list(db.session.scalars(query))


def _placed(goal, run_jobs, **fields) -> Dispatch:
    job = delegated(goal, **fields)
    dispatch = service.dispatch_job(job)
    run_jobs()
    db.session.refresh(dispatch)
    assert dispatch.state == "placed", dispatch.last_error
    return dispatch


def test_sandbox_in_polling_mode_runs_a_job_through_poll_to_delivery(
    goal, sandbox, run_jobs, monkeypatch
):
    monkeypatch.setattr(polling, "POLL_INTERVAL", 0.0)  # every round is due: no waiting here
    sandbox.control(send_webhooks=False)
    dispatch = _placed(goal, run_jobs, title="Write the intro")
    job = dispatch.job

    def delivered():
        polling.poll_due()
        run_jobs()
        db.session.refresh(job)
        return job.status == Status.DELIVERED

    wait_until(delivered, timeout=10, interval=0.1)
    stats = sandbox.stats()
    assert stats["webhooks_sent"] == 0 and stats["webhooks_pending"] == 0
    events = sandbox.market.events(dispatch.external_id)
    stored = _inbound(adapter="sandbox")
    assert {e["id"] for e in events} == {row.event_id for row in stored}
    assert all(row.source == "poll" and row.status == "applied" for row in stored)
    [delivery] = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id))
    submitted = next(e for e in events if e["type"] == "order.delivered")
    assert delivery.external_id == submitted["data"]["submission_id"]
    assert delivery.content == submitted["data"]["content"]


def test_a_change_seen_twice_is_stored_once(goal, sandbox, run_jobs):
    sandbox.control(send_webhooks=False, pause_workers=True)
    dispatch = _placed(goal, run_jobs)
    with sandbox.market.store.tx() as conn:
        sandbox.market.emit(conn, dispatch.external_id, "order.taken", 0.0, worker_id="w1")
    assert polling.poll_dispatch(dispatch) == 1
    assert polling.poll_dispatch(dispatch) == 0
    assert len(_inbound(adapter="sandbox")) == 1


def test_looks_back_off_while_nothing_changes_and_reset_on_news(goal, sandbox, run_jobs):
    sandbox.control(send_webhooks=False, pause_workers=True)
    dispatch = _placed(goal, run_jobs)
    waits = []
    for _ in range(3):
        polling.poll_dispatch(dispatch)
        state = db.session.get(PollState, dispatch.id)
        waits.append((state.next_poll_at - state.last_polled_at).total_seconds())
    assert waits == [60.0, 120.0, 240.0]  # 30 s doubled per empty look
    with sandbox.market.store.tx() as conn:
        sandbox.market.emit(conn, dispatch.external_id, "order.taken", 0.0, worker_id="w1")
    polling.poll_dispatch(dispatch)
    state = db.session.get(PollState, dispatch.id)
    assert state.idle_polls == 0
    assert state.next_poll_at - state.last_polled_at == timedelta(seconds=30)
    for _ in range(20):
        polling.poll_dispatch(dispatch)
    state = db.session.get(PollState, dispatch.id)
    assert state.next_poll_at - state.last_polled_at == timedelta(minutes=30)  # the cap


def test_only_due_open_orders_of_polled_channels_are_queued(goal, sandbox, run_jobs):
    sandbox.control(send_webhooks=False, pause_workers=True)
    dispatch = _placed(goal, run_jobs)
    batch = f"sandbox-{dispatch.connection_id}"  # one batch per connection
    assert polling.poll_due() == {batch: 1}
    run_jobs()
    assert polling.poll_due() == {}  # looked at just now: not due yet
    state = db.session.get(PollState, dispatch.id)
    state.next_poll_at = state.next_poll_at - timedelta(hours=1)
    db.session.commit()
    assert polling.poll_due() == {batch: 1}
    run_jobs()
    service.cancel_job(dispatch.job)
    state = db.session.get(PollState, dispatch.id)
    state.next_poll_at = state.next_poll_at - timedelta(hours=1)
    db.session.commit()
    assert polling.poll_due() == {}  # nothing open: never polled again


def test_a_channel_with_webhooks_is_polled_only_when_its_connection_asks(app):
    from adapters.microworkers import MicroworkersAdapter
    from adapters.sandbox import SandboxAdapter

    settings = app.config["SETTINGS"]
    assert not polling.is_polled(SandboxAdapter(settings))
    assert polling.is_polled(SandboxAdapter(settings, options={"polling": True}))
    assert polling.is_polled(MicroworkersAdapter(settings))


def test_microworkers_slots_are_read_with_the_cursor_across_looks(
    goal, mw_fake, run_jobs, monkeypatch
):
    monkeypatch.setattr(mw, "PAGE_SIZE", 10)
    monkeypatch.setattr(polling, "MAX_PAGES", 1)
    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    slots = mw_fake.take(dispatch.external_id, 25)
    looks = []
    for _ in range(3):
        stored = polling.poll_dispatch(dispatch)
        looks.append((stored, db.session.get(PollState, dispatch.id).cursor))
    assert [n for n, _ in looks] == [10, 10, 5]
    assert looks[0][1] and looks[1][1] and looks[0][1] != looks[1][1]  # the platform's token
    assert looks[2][1] is None  # the scan finished: the next look starts from the top
    assert polling.poll_dispatch(dispatch) == 0
    assert {r.event_id.split("-")[1] for r in _inbound(adapter="microworkers")} == set(slots)
    tokens = [r for r in mw_fake.calls("GET", "/slots") if r.method == "GET"]
    assert len(tokens) == 4


def test_microworkers_delivery_is_applied_and_reviewed_through_the_platform(
    goal, mw_fake, run_jobs
):
    from dispatcher.dispatch import review

    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    [slot] = mw_fake.take(dispatch.external_id, 1)
    mw_fake.submit(slot, "owner@shop.example")
    polling.poll_dispatch(dispatch)
    run_jobs()
    job = dispatch.job
    db.session.refresh(job)
    assert job.status == Status.DELIVERED
    [delivery] = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id))
    assert delivery.content == "owner@shop.example"
    assert delivery.external_id.startswith(slot + "@")
    review.request_revision(delivery, feedback="add where you found it")
    run_jobs()
    assert mw_fake.slots[slot]["status"] == "REVISE"
    assert mw_fake.slots[slot]["employerComment"] == "add where you found it"


def test_unknown_polled_status_is_stored_invalid_and_not_applied(goal, mw_fake, run_jobs):
    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    [slot] = mw_fake.take(dispatch.external_id, 1)
    mw_fake.set_status(slot, "TELEPORTED")
    assert polling.poll_dispatch(dispatch) == 0
    [row] = _inbound(adapter="microworkers")
    assert (row.status, row.source) == ("invalid", "poll")
    assert "TELEPORTED" in row.error


def test_a_polled_row_names_its_dispatch_for_the_quarantine_note(goal, mw_fake, run_jobs):
    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    mw_fake.take(dispatch.external_id, 1)
    polling.poll_dispatch(dispatch)
    [row] = _inbound(adapter="microworkers")
    assert [d.id for d in dispatches_of(row)] == [dispatch.id]


def test_a_refusing_platform_is_recorded_and_waited_out(goal, mw_fake, run_jobs):
    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    mw_fake.fail_next = [503]
    assert polling.poll_dispatch(dispatch) == 0
    state = db.session.get(PollState, dispatch.id)
    assert "platform error" in state.last_error and state.idle_polls == 1
    assert db.session.scalar(select(func.count()).select_from(InboundEvent)) == 0


def test_the_poller_is_a_periodic_job():
    from dispatcher.periodic import periodic_jobs

    assert any(job.func is polling.poll_due for job in periodic_jobs())


def test_a_polled_row_that_cannot_be_read_is_quarantined(goal, mw_fake, run_jobs):
    from dispatcher.inbound.apply import MAX_APPLY_ATTEMPTS, apply_inbound

    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    mw_fake.take(dispatch.external_id, 1)
    polling.poll_dispatch(dispatch)
    [row] = _inbound(adapter="microworkers")
    row.status, row.body = "received", '{"kind": "delivered"}'  # no event id: unreadable
    db.session.commit()
    outcomes = []
    for _ in range(MAX_APPLY_ATTEMPTS):
        try:
            outcomes.append(apply_inbound(row.id))
        except Exception as exc:  # RQ would retry it
            outcomes.append(type(exc).__name__)
    assert outcomes == ["PayloadError"] * (MAX_APPLY_ATTEMPTS - 1) + ["quarantined"]
    db.session.refresh(row)
    assert row.status == "quarantined" and "cannot be read" in row.error


def test_a_job_below_the_30_position_minimum_fails_with_the_reason(goal, mw_fake, run_jobs):
    job = delegated(goal, channel="microworkers", price=50, assignments=3)
    dispatch = service.dispatch_job(job)
    run_jobs()
    db.session.refresh(dispatch)
    db.session.refresh(job)
    assert (dispatch.state, job.status) == ("failed", Status.FAILED)
    assert "at least 30 positions" in dispatch.last_error
    assert job.goal.reserved_cents == 0
    assert mw_fake.calls("POST", "/basic-campaigns") == []


def test_a_change_that_came_by_webhook_is_not_stored_again_by_a_poll(
    client, goal, sandbox, run_jobs
):
    import json

    from dispatch.helpers import signed_webhook

    sandbox.control(send_webhooks=False, pause_workers=True)
    dispatch = _placed(goal, run_jobs)
    with sandbox.market.store.tx() as conn:
        sandbox.market.emit(conn, dispatch.external_id, "order.taken", 0.0, worker_id="w1")
    [event] = sandbox.market.events(dispatch.external_id)
    body = json.dumps(event).encode()
    headers, body = signed_webhook(
        "order.taken", dispatch.external_id, msg_id=event["id"], body=body
    )
    from urllib.parse import urlparse

    from dispatcher import connections
    from dispatcher.models import Connection

    url = urlparse(connections.webhook_url(db.session.get(Connection, dispatch.connection_id)))
    assert client.post(url.path, data=body, headers=headers).status_code == 202
    assert polling.poll_dispatch(dispatch) == 0
    [row] = _inbound(adapter="sandbox")
    assert (row.event_id, row.source) == (event["id"], "webhook")


def test_microworkers_auto_approval_after_ttr_is_paid_in_the_books(goal, mw_fake, run_jobs):
    """Unrated work the platform approves on its own after `ttr` is paid there: the books
    follow (that place paid, the money spent), found by polling alone."""
    dispatch = _placed(goal, run_jobs, channel="microworkers", price=50, assignments=30)
    db.session.refresh(goal)
    goal_before = (goal.reserved_cents, goal.spent_cents)
    [slot] = mw_fake.take(dispatch.external_id, 1)
    mw_fake.submit(slot, "owner@shop.example")
    assert mw_fake.auto_approve(datetime.now(UTC) + timedelta(days=4)) == [slot]
    polling.poll_dispatch(dispatch)
    run_jobs()
    db.session.expire_all()
    [delivery] = db.session.scalars(select(Delivery).where(Delivery.job_id == dispatch.job_id))
    place = delivery.assignment
    assert (place.status, place.paid_cents) == ("paid", 50)
    assert delivery.status == "accepted"
    goal = db.session.get(type(goal), goal.id)
    fee = place.fee_cents
    assert goal.spent_cents == goal_before[1] + 50 + fee
    assert goal.reserved_cents == goal_before[0] - 50 - fee
