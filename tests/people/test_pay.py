"""Recording pay for a person's accepted work (issue 9 part 7): charged to the budget as
spent, added to the assignment's pay, on the timeline, refused past a budget, and paid once
when the same form is sent twice at the same time."""

from __future__ import annotations

import threading

import pytest
from api.helpers import assert_problem
from sqlalchemy import select

from dispatcher.dispatch import review
from dispatcher.extensions import db
from dispatcher.lifecycle import AssignmentState
from dispatcher.models import Assignment, Event, Goal, MicroJob
from dispatcher.planning import tree

from .conftest import page
from .helpers import given, job_of, paid_at_platform, submit


@pytest.fixture
def accepted(goal, person):
    """Sam's job (price 10.00) on the sandbox: delivered and accepted (its 10.00 "paying")."""
    sam = person("Sam Writer")
    dispatch = given(goal, sam, "Write a guest post")
    delivery = submit(dispatch, "s1")
    review.accept(delivery, rating=5)
    return delivery


def _place(delivery) -> Assignment:
    db.session.expire_all()
    return db.session.get(Assignment, delivery.assignment_id)


def _money(delivery) -> tuple[int, int, int, int]:
    """(goal spent, goal reserved, job spent, place paid)."""
    db.session.expire_all()
    place = db.session.get(Assignment, delivery.assignment_id)
    job = db.session.get(MicroJob, place.job_id)
    goal = db.session.get(Goal, job.goal_id)
    return goal.spent_cents, goal.reserved_cents, job.spent_cents, place.paid_cents


def _mark(client, delivery, amount: str, paid_before: int = 0):
    place = _place(delivery)
    return client.post(
        f"/jobs/{place.job_id}/assignments/{place.id}/paid",
        data={"amount": amount, "paid_before": str(paid_before)},
        follow_redirects=True,
    )


def test_mark_paid_from_the_job_page_then_the_platform_confirms_the_price(client, accepted):
    assert _money(accepted) == (0, 1_000, 0, 0)
    job_page = page(client.get(f"/jobs/{accepted.job_id}"))
    assert "Mark paid" in job_page

    html = page(_mark(client, accepted, "2.50"))
    assert "Recorded 2.50 USD paid to Sam Writer for “Write a guest post”." in html
    assert _money(accepted) == (250, 1_000, 250, 250)  # spent; the price still "paying"
    (recorded,) = db.session.scalars(select(Event).where(Event.kind == "payment_recorded"))
    assert recorded.job_id == accepted.job_id and recorded.data["payout_cents"] == 250
    assert recorded.data["person"] == "Sam Writer"
    assert "paid:</span> 2.50" in html  # on the timeline

    paid_at_platform(accepted)  # the price, paid on acceptance, adds to what was recorded
    assert _money(accepted) == (1_250, 0, 1_250, 1_250)
    assert _place(accepted).status == AssignmentState.PAID
    assert "Mark paid" in page(client.get(f"/jobs/{accepted.job_id}"))  # a bonus stays possible


def test_a_payment_past_the_goals_budget_is_refused_and_changes_nothing(client, accepted):
    html = page(_mark(client, accepted, "95.00"))  # 10.00 held of 100.00: 90.00 left
    assert "Over budget" in html and "this needs 95.00 USD" in html
    assert _money(accepted) == (0, 1_000, 0, 0)
    assert db.session.scalars(select(Event).where(Event.kind == "payment_recorded")).all() == []


def test_a_payment_past_the_jobs_own_envelope_is_refused(client, goal, person):
    sam = person()
    parent = tree.add_job(goal, title="Guest posts", budget_cents=1_200)
    dispatch = given(goal, sam, "Post one", parent=parent)
    delivery = submit(dispatch, "e1")
    review.accept(delivery)
    html = page(_mark(client, delivery, "3.00"))  # 10.00 held under a 12.00 envelope
    assert "Over budget" in html and "envelope on &#39;Guest posts&#39; has no room" in html
    assert _money(delivery) == (0, 1_000, 0, 0)


def test_work_not_accepted_has_no_mark_paid_and_is_refused(client, goal, person):
    dispatch = given(goal, person(), "Waiting")
    delivery = submit(dispatch, "w1")
    assert "Mark paid" not in page(client.get(f"/jobs/{delivery.job_id}"))
    html = page(_mark(client, delivery, "1.00"))
    assert "This work is submitted: only accepted work is paid" in html
    assert _money(delivery) == (0, 1_000, 0, 0)


def test_bad_amounts_are_refused_with_a_message(client, accepted):
    for amount, words in [
        ("", "give the amount paid"),
        ("0", "more than 0"),
        ("x", "not an amount"),
    ]:
        assert words in page(_mark(client, accepted, amount)), amount
    assert _money(accepted) == (0, 1_000, 0, 0)


def test_a_double_click_pays_once(app, client, login, accepted):
    """Two browsers send the same form (paid before: 0) at the same moment: both requests
    run to an answer, one records the payment, the other is told it was recorded meanwhile."""
    second = app.test_client()
    login(second)
    place = _place(accepted)
    url = f"/jobs/{place.job_id}/assignments/{place.id}/paid"
    start = threading.Barrier(2)
    answers: list[tuple[int, str]] = []

    def send(browser):
        start.wait()
        response = browser.post(url, data={"amount": "3.00", "paid_before": "0"})
        followed = browser.get(response.headers["Location"])
        answers.append((response.status_code, page(followed)))

    threads = [threading.Thread(target=send, args=(b,)) for b in (client, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [code for code, _ in answers] == [303, 303]  # both ran
    texts = [text for _, text in answers]
    assert sum("Recorded 3.00 USD paid to Sam Writer" in t for t in texts) == 1
    assert sum("A payment was recorded meanwhile" in t for t in texts) == 1
    assert _money(accepted) == (300, 1_000, 300, 300)
    assert len(db.session.scalars(select(Event).where(Event.kind == "payment_recorded")).all()) == 1


def test_the_api_records_a_payment_for_a_teammate_on_no_rate(api, goal, person):
    """A free job (no price) for Sam: accepted and confirmed at 0, then paid 40.00 by hand."""
    dispatch = given(goal, person(), "Favour", price=0, free=True)
    delivery = submit(dispatch, "f1")
    review.accept(delivery)
    paid_at_platform(delivery)
    place = _place(delivery)
    assert (place.status, place.paid_cents) == (AssignmentState.PAID, 0)
    url = f"/api/v1/jobs/{place.job_id}/assignments/{place.id}/payments"

    response = api.post(url, json={"amount_cents": 4_000, "paid_before_cents": 0})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["paid_cents"] == 4_000
    assert _money(delivery) == (4_000, 0, 4_000, 4_000)
    assert job_of(dispatch).spent_cents == 4_000

    stale = assert_problem(api.post(url, json={"amount_cents": 4_000, "paid_before_cents": 0}), 409)
    assert "a payment was recorded meanwhile" in stale["detail"]
    assert_problem(api.post(url, json={"amount_cents": 0, "paid_before_cents": 4_000}), 422)
    assert _money(delivery) == (4_000, 0, 4_000, 4_000)


def test_the_api_is_404_for_another_owners_job_or_a_place_of_another_job(
    app, api, accepted, goal, person
):
    from api.conftest import bearer
    from api.helpers import make_owner

    place = _place(accepted)
    body = {"amount_cents": 100, "paid_before_cents": 0}
    bob = bearer(app, make_owner("bob@example.com"))
    url = f"/api/v1/jobs/{place.job_id}/assignments/{place.id}/payments"
    assert_problem(bob.post(url, json=body), 404)
    other = given(goal, person("Kim Coder"), "Other")
    wrong = f"/api/v1/jobs/{other.job_id}/assignments/{place.id}/payments"
    assert_problem(api.post(wrong, json=body), 404)
    assert _money(accepted)[3] == 0
