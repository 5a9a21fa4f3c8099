"""Bad input never corrupts money, on the pages: a budget below what is held and a new price
for a job out at its channel come back as form errors, and nothing is saved."""

from __future__ import annotations

import re

from sqlalchemy import select

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Event

from .conftest import page, reload

GOAL_FORM = {"title": "52 guest posts", "budget": "100", "currency": "USD", "target": "52"}


def _out(make_job, price_cents: int = 3_000, assignments: int = 2):
    job = make_job(
        mode="delegate", channel="sandbox", price_cents=price_cents, assignments=assignments
    )
    dispatch_service.dispatch_job(job)  # $60 of the goal's $100 reserved
    return job


def _updates(kind: str) -> int:
    return len(db.session.scalars(select(Event).where(Event.kind == kind)).all())


def test_a_budget_below_what_is_reserved_is_a_form_error(client, goal, make_job):
    _out(make_job)
    response = client.post(
        f"/goals/{goal.id}/edit", data={**GOAL_FORM, "title": "Cheaper", "budget": "59.99"}
    )
    assert response.status_code == 400
    html = page(response)
    assert "60.00 USD of this goal is already reserved or spent" in html
    assert re.search(r'<input aria-invalid="true"[^>]*name="budget"', html)  # on its field
    assert 'value="59.99"' in html  # what was typed stays in the form
    goal = reload(goal)
    assert (goal.title, goal.budget_cents, goal.reserved_cents) == ("52 guest posts", 10_000, 6_000)
    assert _updates("goal_updated") == 0

    response = client.post(f"/goals/{goal.id}/edit", data={**GOAL_FORM, "budget": "60"})
    assert response.status_code == 303
    assert reload(goal).budget_cents == 6_000


def test_the_currency_cannot_change_under_money_held_in_it(client, goal, make_job):
    _out(make_job)
    response = client.post(f"/goals/{goal.id}/edit", data={**GOAL_FORM, "currency": "EUR"})
    assert response.status_code == 400
    html = page(response)
    assert "the currency cannot change" in html
    assert re.search(r'<input aria-invalid="true"[^>]*name="currency"', html)
    assert reload(goal).currency == "USD"


def test_a_new_price_for_a_dispatched_job_is_refused_until_it_is_cancelled(client, goal, make_job):
    job = _out(make_job)
    form = {"title": "Renamed", "deliverable_kind": "text", "price": "10", "assignments": "2"}
    response = client.post(f"/jobs/{job.id}/edit", data=form)
    assert response.status_code == 400
    html = page(response)
    assert "is queued at sandbox: its price cannot change" in html
    assert "cancel it first" in html
    job = reload(job)
    assert (job.title, job.price_cents, job.assignments) == ("Write a guest post", 3_000, 2)
    assert reload(goal).reserved_cents == 6_000

    response = client.post(f"/jobs/{job.id}/edit", data={**form, "price": "30", "assignments": "1"})
    assert response.status_code == 400
    assert "its assignments cannot change" in page(response)

    client.post(f"/jobs/{job.id}/cancel")
    assert reload(job).status == Status.CANCELLED
    assert client.post(f"/jobs/{job.id}/edit", data=form).status_code == 303
    job = reload(job)
    assert (job.title, job.price_cents) == ("Renamed", 1_000)


def test_a_dispatched_job_still_saves_what_the_page_shows(client, goal, make_job):
    job = _out(make_job)
    html = page(client.get(f"/jobs/{job.id}/edit"))
    assert 'name="price"' not in html and "fixed once the job is under way" in html
    # the form as that page sends it: no price, no assignments
    response = client.post(
        f"/jobs/{job.id}/edit", data={"title": "Renamed", "deliverable_kind": "url"}
    )
    assert response.status_code == 303, page(response)
    job = reload(job)
    assert (job.title, job.deliverable_kind, job.price_cents, job.assignments) == (
        "Renamed", "url", 3_000, 2,
    )  # fmt: skip
