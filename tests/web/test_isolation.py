"""Owners see only their own data: every page and action on another owner's goal, job or
delivery answers 404 (not 403: from outside, someone else's row does not exist)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Dispatch, Event, MicroJob, Review

from .conftest import page, reload

GOAL_URLS = [
    ("get", "/goals/{goal}"),
    ("get", "/goals/{goal}/edit"),
    ("post", "/goals/{goal}/edit"),
    ("post", "/goals/{goal}/jobs"),
    ("post", "/goals/{goal}/dispatch"),
]
JOB_URLS = [
    ("get", "/jobs/{job}"),
    ("get", "/jobs/{job}/edit"),
    ("post", "/jobs/{job}/edit"),
    ("post", "/jobs/{job}/children"),
    ("post", "/jobs/{job}/split"),
    ("post", "/jobs/{job}/mode"),
    ("post", "/jobs/{job}/act/complete"),
    ("post", "/jobs/{job}/dispatch"),
    ("post", "/jobs/{job}/retry"),
    ("post", "/jobs/{job}/cancel"),
]
DELIVERY_URLS = [
    ("get", "/deliveries/{delivery}"),
    ("post", "/deliveries/{delivery}/accept"),
    ("post", "/deliveries/{delivery}/revise"),
    ("post", "/deliveries/{delivery}/reject"),
]
FORM = {
    "title": "Hijacked",
    "titles": "x\ny",
    "mode": "delegate",
    "channel": "sandbox",
    "currency": "USD",
    "budget": "1000000",
    "payout": "",
    "feedback": "redo",
    "reason": "no",
    "deliverable_kind": "text",
    "assignments": "1",
}


@pytest.fixture
def anns_things(goal, make_job, delivered):
    job = make_job("Ann's job", mode="delegate", channel="sandbox", price_cents=1_000)
    delivery = delivered("Ann's delivered job")
    return {"goal": goal.id, "job": job.id, "delivery": delivery.id}


@pytest.mark.parametrize(("method", "url"), GOAL_URLS + JOB_URLS + DELIVERY_URLS)
def test_another_owner_gets_404(bob_client, anns_things, method, url):
    before = _snapshot()
    target = url.format(**anns_things)

    response = getattr(bob_client, method)(target, data=FORM if method == "post" else None)

    assert response.status_code == 404, target
    assert "Not found" in page(response)
    # her name nowhere on the page; random tokens (CSRF, nonces) left out, as one may hold "Ann"
    assert "Ann" not in re.sub(r'"[A-Za-z0-9_.=-]{20,}"', '""', page(response))
    assert _snapshot() == before  # nothing changed


def test_another_owner_sees_none_of_it_in_lists(bob_client, anns_things):
    assert "52 guest posts" not in page(bob_client.get("/goals"))
    queue = page(bob_client.get("/review"))
    assert "delivered job" not in queue and 'id="review-count">0<' in queue


def test_ids_that_do_not_exist_are_404_too(client, ann):
    assert client.get("/goals/999999").status_code == 404
    assert client.get("/jobs/999999").status_code == 404
    assert client.post("/deliveries/999999/accept").status_code == 404


def _snapshot():
    db.session.expire_all()
    jobs = db.session.scalars(select(MicroJob).order_by(MicroJob.id)).all()
    return (
        [(j.title, j.status, j.mode, j.parent_id) for j in jobs],
        db.session.scalar(select(db.func.count()).select_from(Dispatch)),
        db.session.scalar(select(db.func.count()).select_from(Review)),
        db.session.scalar(select(db.func.count()).select_from(Event)),
    )


def test_ann_still_sees_her_own(client, anns_things):
    assert client.get("/goals/{goal}".format(**anns_things)).status_code == 200
    assert client.get("/jobs/{job}".format(**anns_things)).status_code == 200
    assert reload(db.session.get(MicroJob, anns_things["job"])).title == "Ann's job"
