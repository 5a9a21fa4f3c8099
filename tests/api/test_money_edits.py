"""Bad input never corrupts money: edits of budgets and of jobs out at a channel, refused
with the field named and nothing changed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from adapters.base import AdapterRegistry
from adapters.sandbox import SandboxAdapter
from dispatcher import lifecycle
from dispatcher.dispatch import budget
from dispatcher.extensions import db
from dispatcher.models import Event, Goal, MicroJob

from .helpers import assert_problem


def _out(api, new_job, price: int = 3_000, assignments: int = 2, **fields) -> dict:
    """A delegated job dispatched through the API: price x assignments is reserved."""
    job = new_job("Write a guest post", price_cents=price, assignments=assignments, **fields)
    api.post(f"/api/v1/jobs/{job['id']}/delegate", json={"channel": "sandbox"})
    response = api.post(f"/api/v1/jobs/{job['id']}/dispatch")
    assert response.status_code == 202, response.get_json()
    return api.get(f"/api/v1/jobs/{job['id']}").get_json()


def _events(kind: str, job: dict | None = None) -> int:
    query = select(Event).where(Event.kind == kind)
    if job is not None:
        query = query.where(Event.job_id == job["id"])
    return len(db.session.scalars(query).all())


def _goal(goal: dict) -> Goal:
    db.session.expire_all()
    return db.session.get(Goal, goal["id"])


def _job(job: dict) -> MicroJob:
    db.session.expire_all()
    return db.session.get(MicroJob, job["id"])


def test_a_budget_below_what_is_reserved_is_422_and_changes_nothing(api, goal, new_job):
    _out(api, new_job)  # $60 of the $100 reserved
    url = f"/api/v1/goals/{goal['id']}"
    response = api.patch(url, json={"title": "Cheaper", "budget_cents": 5_999})
    problem = assert_problem(response, 422)
    assert problem["title"] == "Unprocessable Entity"
    assert "60.00" in problem["detail"] and "cannot be lower" in problem["detail"]
    assert list(problem["errors"]["json"]) == ["budget_cents"]
    row = _goal(goal)
    assert (row.title, row.budget_cents, row.reserved_cents) == ("52 guest posts", 10_000, 6_000)
    assert _events("goal_updated") == 0

    response = api.patch(url, json={"budget_cents": 6_000})  # exactly what is held: fine
    assert response.status_code == 200, response.get_json()
    assert (response.get_json()["budget_cents"], response.get_json()["available_cents"]) == (
        6_000,
        0,
    )


def test_spent_money_counts_too(api, goal, new_job):
    job = _out(api, new_job, price=2_000, assignments=1)
    row = _job(job)
    budget.spend(row, 2_000, 1_500)  # accepted at $15: $15 spent, nothing reserved
    db.session.commit()
    problem = assert_problem(
        api.patch(f"/api/v1/goals/{goal['id']}", json={"budget_cents": 1_499}), 422
    )
    assert "15.00" in problem["detail"]
    assert _goal(goal).budget_cents == 10_000
    assert api.patch(f"/api/v1/goals/{goal['id']}", json={"budget_cents": 1_500}).status_code == 200


def test_the_currency_cannot_change_under_money_held_in_it(api, goal, new_job):
    url = f"/api/v1/goals/{goal['id']}"
    assert api.patch(url, json={"currency": "EUR"}).status_code == 200  # nothing held yet
    assert api.patch(url, json={"currency": "USD"}).status_code == 200
    _out(api, new_job)
    problem = assert_problem(api.patch(url, json={"currency": "EUR"}), 422)
    assert list(problem["errors"]["json"]) == ["currency"]
    assert _goal(goal).currency == "USD"


def test_an_envelope_below_what_its_subtree_holds_is_422(api, goal, new_job):
    parent = new_job("Publish 4 posts", budget_cents=8_000)
    _out(api, new_job, parent_id=parent["id"])  # $60 held under the parent
    url = f"/api/v1/jobs/{parent['id']}"
    problem = assert_problem(api.patch(url, json={"budget_cents": 5_000}), 422)
    assert list(problem["errors"]["json"]) == ["budget_cents"]
    assert "60.00" in problem["detail"] and "Publish 4 posts" in problem["detail"]
    assert _job(parent).budget_cents == 8_000
    assert _events("job_updated", parent) == 0
    assert api.patch(url, json={"budget_cents": 6_000}).status_code == 200
    assert api.patch(url, json={"budget_cents": None}).status_code == 200  # no envelope


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"price_cents": 1_000}, "price_cents"),
        ({"assignments": 1}, "assignments"),
        ({"channel": "other"}, "channel"),
        ({"channel_options": {"level": "pro"}}, "channel_options"),
        ({"mode": "keep"}, "mode"),
        ({"title": "Renamed", "price_cents": 9_999}, "price_cents"),
    ],
)
def test_order_terms_of_a_dispatched_job_are_409_until_it_is_cancelled(
    app, api, goal, new_job, body, field
):
    registry = AdapterRegistry(
        app.config["SETTINGS"], classes={"sandbox": SandboxAdapter, "other": SandboxAdapter}
    )
    app.extensions["dispatcher.adapters"] = registry  # a second channel to switch to
    job = _out(api, new_job)
    url = f"/api/v1/jobs/{job['id']}"
    updates = _events("job_updated", job)
    problem = assert_problem(api.patch(url, json=body), 409)
    assert list(problem["errors"]["json"]) == [field]
    assert "is queued at sandbox" in problem["detail"] and "cancel it first" in problem["detail"]
    row = _job(job)
    assert (row.title, row.price_cents, row.assignments, row.channel, row.mode) == (
        "Write a guest post", 3_000, 2, "sandbox", "delegate",
    )  # fmt: skip
    assert row.channel_options == {}
    assert _goal(goal).reserved_cents == 6_000
    assert _events("job_updated", job) == updates

    assert api.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 200
    response = api.patch(url, json=body)  # cancelled: the money is back, the terms are free
    assert response.status_code == 200, response.get_json()


def test_what_does_not_touch_the_order_terms_still_changes(api, new_job):
    job = _out(api, new_job)
    url = f"/api/v1/jobs/{job['id']}"
    response = api.patch(url, json={"title": "Write a better post", "price_cents": 3_000})
    assert response.status_code == 200, response.get_json()  # the same price: no change
    assert response.get_json()["title"] == "Write a better post"


def test_keep_and_delegate_of_a_dispatched_job_are_409(api, new_job):
    job = _out(api, new_job)
    assert_problem(api.post(f"/api/v1/jobs/{job['id']}/keep"), 409)
    problem = assert_problem(
        api.post(
            f"/api/v1/jobs/{job['id']}/delegate",
            json={"channel": "sandbox", "channel_options": {"level": "pro"}},
        ),
        409,
    )
    assert "channel options" in problem["detail"]
    assert (_job(job).mode, _job(job).channel_options) == ("delegate", {})


@pytest.mark.parametrize("status", sorted(lifecycle.TERMS_FIXED))
def test_every_status_that_holds_money_fixes_the_price(api, new_job, status):
    job = _out(api, new_job)
    row = _job(job)
    row.status = status  # as the lifecycle would have moved it
    db.session.commit()
    problem = assert_problem(api.patch(f"/api/v1/jobs/{job['id']}", json={"price_cents": 1}), 409)
    assert ("is paid" if status == "paid" else "cancel it first") in problem["detail"]
    assert _job(job).price_cents == 3_000
