"""The pages against the real sandbox marketplace on loopback: dispatch from the goal page,
let the real worker place the orders, and see what the platform said on the job page."""

from __future__ import annotations

import pytest
from fakes.sandbox_fixture import sandbox, sandbox_account  # noqa: F401
from sqlalchemy import select

from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, Goal, MicroJob

from .conftest import page, reload


@pytest.fixture
def app_config(app_config, sandbox):  # noqa: F811
    return {
        **app_config,
        "sandbox_url": sandbox.base_url,
        "http_connect_timeout": 1.0,
        "http_read_timeout": 2.0,
    }


@pytest.fixture
def live_ann(ann, sandbox):  # noqa: F811
    """Ann, whose sandbox connection holds a real account's key at the running sandbox."""
    connection = connections.for_adapter(ann.id, "sandbox")
    connections.change(connection, credentials={"api_key": sandbox_account(sandbox.base_url)})
    db.session.commit()
    return ann


def _job(title: str) -> MicroJob:
    return db.session.scalars(select(MicroJob).where(MicroJob.title == title)).one()


def test_dispatch_from_the_page_and_see_the_platforms_answer(client, live_ann, run_jobs):
    client.post("/goals", data={"title": "Launch", "budget": "250000", "currency": "USD"})
    goal = db.session.scalars(select(Goal)).one()
    client.post(f"/goals/{goal.id}/jobs", data={"title": "Proofread the landing page"})
    client.post(f"/goals/{goal.id}/jobs", data={"title": "Build the whole app"})
    fine, too_dear = _job("Proofread the landing page"), _job("Build the whole app")
    for job, price in ((fine, "12.50"), (too_dear, "200000")):
        edit = {"title": job.title, "price": price, "assignments": "1", "deliverable_kind": "text"}
        assert client.post(f"/jobs/{job.id}/edit", data=edit).status_code == 303
        mode = {"mode": "delegate", "channel": "sandbox"}
        assert client.post(f"/jobs/{job.id}/mode", data=mode).status_code == 303

    response = client.post(f"/goals/{goal.id}/dispatch", follow_redirects=True)
    assert "Sent 2 jobs out" in page(response)
    assert run_jobs() >= 2

    fine, too_dear = reload(fine), reload(too_dear)
    placed = db.session.scalars(select(Dispatch).where(Dispatch.job_id == fine.id)).one()
    assert fine.status in (Status.DISPATCHED, Status.TAKEN, Status.DELIVERED)
    assert placed.state == "placed" and placed.external_id
    assert placed.external_id in page(client.get(f"/jobs/{fine.id}"))

    failed = db.session.scalars(select(Dispatch).where(Dispatch.job_id == too_dear.id)).one()
    assert too_dear.status == Status.FAILED and failed.state == "failed"
    html = page(client.get(f"/jobs/{too_dear.id}"))
    assert "sandbox could not take this job" in html
    assert "price_cents" in html  # the platform's own reason, shown as it gave it
    assert failed.last_error.split(":")[0] in html
    assert reload(goal).reserved_cents == 1_250  # the failed order's money is back
