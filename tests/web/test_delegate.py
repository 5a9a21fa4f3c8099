"""Delegating over HTTP: mark, dispatch (one or all), budget refusals, cancel and retry, and
what the owner sees of a dispatch (its state, attempts and the platform's reason)."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher import connections
from dispatcher.dispatch import send
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, DispatchState, Event
from dispatcher.queues import DISPATCH, get_queue

from .conftest import page, reload


def _dispatches():
    return db.session.scalars(select(Dispatch).order_by(Dispatch.id)).all()


def test_delegate_needs_a_known_channel(client, ann, goal, make_job):
    job = make_job()
    html = page(client.get(f"/goals/{goal.id}"))
    mine = connections.for_adapter(ann.id, "sandbox")
    assert f'<option value="{mine.id}">Sandbox (sandbox)</option>' in html  # her connections

    response = client.post(f"/jobs/{job.id}/mode", data={"mode": "delegate", "channel": ""})
    assert response.status_code == 400
    assert "pick a channel to delegate to" in page(response)

    response = client.post(f"/jobs/{job.id}/mode", data={"mode": "delegate", "channel": "fiverr"})
    assert response.status_code == 400
    assert "no connection “fiverr”" in page(response)
    assert reload(job).mode == "undecided"


def test_delegate_and_dispatch_one_job(client, goal, make_job):
    job = make_job("Write a guest post", price_cents=2_500, assignments=2)
    response = client.post(f"/jobs/{job.id}/mode", data={"mode": "delegate", "channel": "sandbox"})
    assert response.status_code == 303
    job = reload(job)
    assert (job.mode, job.channel) == ("delegate", "sandbox")
    assert f'action="/jobs/{job.id}/dispatch"' in page(client.get(f"/goals/{goal.id}"))

    response = client.post(f"/jobs/{job.id}/dispatch", follow_redirects=True)
    assert "Queued for sandbox: Write a guest post" in page(response)

    (dispatch,) = _dispatches()
    job, goal = reload(job), reload(goal)
    assert job.status == Status.QUEUED
    assert (dispatch.job_id, dispatch.adapter, dispatch.state) == (job.id, "sandbox", "pending")
    assert dispatch.amount_cents == 5_000 and goal.reserved_cents == 5_000
    assert get_queue(DISPATCH).count == 1  # enqueued after the commit
    assert 'id="reserved">50.00 USD' in page(response)

    detail = page(client.get(f"/jobs/{job.id}"))
    assert "queue" in detail and "draft → queued" in detail and "by you" in detail
    assert "pending" in detail


def test_dispatch_everything_marked(client, goal, make_job):
    a = make_job("A", mode="delegate", channel="sandbox", price_cents=1_000)
    b = make_job("B", mode="delegate", channel="sandbox", price_cents=1_000)
    kept = make_job("C", mode="keep")
    assert "Dispatch everything marked (2)" in page(client.get(f"/goals/{goal.id}"))

    response = client.post(f"/goals/{goal.id}/dispatch", follow_redirects=True)
    assert "Sent 2 jobs out" in page(response)
    assert [d.job_id for d in _dispatches()] == [a.id, b.id]
    assert [reload(j).status for j in (a, b, kept)] == ["queued", "queued", "draft"]

    again = client.post(f"/goals/{goal.id}/dispatch", follow_redirects=True)
    assert "Nothing to dispatch" in page(again)
    assert len(_dispatches()) == 2


def test_over_budget_is_a_message_not_an_error(client, goal, make_job):
    job = make_job("Big one", mode="delegate", channel="sandbox", price_cents=8_000)
    other = make_job("Second", mode="delegate", channel="sandbox", price_cents=3_000)

    response = client.post(f"/goals/{goal.id}/dispatch", follow_redirects=True)
    assert response.status_code == 200
    assert "Over budget" in page(response)
    assert _dispatches() == []  # all or nothing
    assert reload(goal).reserved_cents == 0

    assert client.post(f"/jobs/{job.id}/dispatch").status_code == 303
    response = client.post(f"/jobs/{other.id}/dispatch", follow_redirects=True)
    assert "Over budget" in page(response) and "goal budget left is 20.00 USD" in page(response)
    assert reload(other).status == Status.DRAFT
    assert reload(goal).reserved_cents == 8_000


def test_cancel_a_queued_job_releases_its_money(client, goal, make_job):
    job = make_job(mode="delegate", channel="sandbox", price_cents=2_000)
    client.post(f"/jobs/{job.id}/dispatch")
    assert f'action="/jobs/{job.id}/cancel"' in page(client.get(f"/jobs/{job.id}"))

    response = client.post(
        f"/jobs/{job.id}/cancel", data={"next": f"/jobs/{job.id}"}, follow_redirects=True
    )
    assert "Cancelled: Write a guest post" in page(response)
    assert reload(job).status == Status.CANCELLED
    assert reload(goal).reserved_cents == 0
    assert _dispatches()[0].state == DispatchState.CANCELLED


def test_a_failed_dispatch_shows_the_platforms_reason_and_can_be_retried(client, goal, make_job):
    job = make_job(mode="delegate", channel="sandbox", price_cents=2_000)
    client.post(f"/jobs/{job.id}/dispatch")
    job = reload(job)
    (dispatch,) = _dispatches()
    # what the send task does when the platform refuses the order for good
    dispatch.attempts = 1
    send._fail(
        dispatch, "sandbox HTTP 422: price_cents: must be between 1 and 10000000", owe_cancel=False
    )

    html = page(client.get(f"/jobs/{job.id}"))
    assert "could not take this job" in html
    assert "price_cents: must be between 1 and 10000000" in html
    assert f'action="/jobs/{job.id}/retry"' in html

    response = client.post(f"/jobs/{job.id}/retry", follow_redirects=True)
    assert "Sent again to sandbox" in page(response)
    assert reload(job).status == Status.QUEUED
    assert [d.state for d in _dispatches()] == ["failed", "pending"]


def test_who_does_it_is_fixed_once_the_job_is_out(client, goal, make_job):
    job = make_job(mode="delegate", channel="sandbox", price_cents=1_000)
    dispatch_service.dispatch_job(job)
    response = client.post(f"/jobs/{job.id}/mode", data={"mode": "keep"}, follow_redirects=True)
    assert "can no longer change" in page(response)
    assert reload(job).mode == "delegate"

    # and its price: a new price or assignments is refused (cancel first), nothing is saved
    response = client.post(
        f"/jobs/{job.id}/edit",
        data={"title": "Renamed", "price": "999", "assignments": "9", "deliverable_kind": "text"},
    )
    assert response.status_code == 400 and "cancel it first" in page(response)
    job = reload(job)
    assert (job.title, job.price_cents, job.assignments) == ("Write a guest post", 1_000, 1)


def test_a_delegated_job_is_not_ticked_off_by_hand(client, goal, make_job):
    job = make_job(mode="delegate", channel="sandbox")
    response = client.post(f"/jobs/{job.id}/act/complete", follow_redirects=True)
    assert "is delegated: mark it" in page(response)
    assert reload(job).status == Status.DRAFT


def test_dispatching_an_unmarked_job_is_refused_on_the_page(client, goal, make_job):
    job = make_job()
    response = client.post(f"/jobs/{job.id}/dispatch", follow_redirects=True)
    assert response.status_code == 200
    assert "mark it delegate and pick a channel first" in page(response)
    assert _dispatches() == []
    assert db.session.scalars(select(Event).where(Event.kind == "queue")).all() == []
