"""Issue 11: a paid channel refuses a zero-price job on the pages too; free is said explicitly."""

from __future__ import annotations

from dispatcher.extensions import db
from dispatcher.models import Dispatch

from .conftest import page, reload


def test_dispatching_a_job_with_no_price_is_refused_with_the_reason(client, goal, make_job):
    job = make_job("Find 20 blogs", mode="delegate", channel="sandbox")
    response = client.post(f"/jobs/{job.id}/dispatch")
    assert response.status_code == 303
    html = page(client.get(response.headers["Location"]))
    assert "has no price and sandbox is a paid channel" in html
    assert reload(job).status == "draft"
    assert db.session.query(Dispatch).count() == 0

    response = client.post(f"/goals/{goal.id}/dispatch")
    assert "has no price" in page(client.get(response.headers["Location"]))
    assert db.session.query(Dispatch).count() == 0


def test_the_edit_form_states_a_job_free_and_it_goes_out(client, goal, make_job):
    job = make_job("Find 20 blogs", mode="delegate", channel="sandbox")
    form = {"title": job.title, "deliverable_kind": "text", "price": "", "assignments": "1"}
    response = client.post(f"/jobs/{job.id}/edit", data=form | {"free": "y"})
    assert response.status_code == 303
    assert reload(job).free is True

    response = client.post(f"/jobs/{job.id}/dispatch")
    assert "Queued for sandbox" in page(client.get(response.headers["Location"]))
    assert reload(job).status == "queued"


def test_free_with_a_price_is_a_form_error(client, goal, make_job):
    job = make_job("Find 20 blogs")
    form = {"title": job.title, "deliverable_kind": "text", "price": "5", "assignments": "1"}
    response = client.post(f"/jobs/{job.id}/edit", data=form | {"free": "y"})
    assert response.status_code == 400
    assert "a free job has no price" in page(response)
    assert (reload(job).free, reload(job).price_cents) == (False, 0)
