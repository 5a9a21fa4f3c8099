"""The assignments issue, as a new owner lives it in a real browser: connect the sandbox and a
Microworkers account (the faithful fake), send one job to three workers, reject one
submission, ask another for a revision, accept the third and then the revised one, and see
exactly the right money on the goal.

The sandbox's webhooks go to the live server (its port is the apps' public base URL); the
queues run in this process (`run_jobs`) between page steps.
"""

from __future__ import annotations

import pytest
from fakes.microworkers import API_KEY, FakeMicroworkers
from fakes.sandbox_fixture import sandbox_account, wait_until
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Assignment, Connection, Delivery, MicroJob
from dispatcher.planning import tree

pytestmark = pytest.mark.browser

PRICE = "12.50"


@pytest.fixture
def app_config(app_config, sandbox):
    return {**app_config, "sandbox_url": sandbox.base_url, "http_read_timeout": 2.0}


@pytest.fixture
def market(sandbox, live_server):
    """The sandbox, stopped before the live server (no webhook in flight at teardown)."""
    yield sandbox
    sandbox.stop()


@pytest.fixture
def mw():
    fake = FakeMicroworkers().start()
    yield fake
    fake.stop()


def fresh(row):
    db.session.expire_all()
    return db.session.get(type(row), row.id)


def connect(page, adapter: str, fields: dict[str, str]) -> None:
    page.goto("/settings/connections")
    form = page.locator(f"#connect-{adapter}")
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(value)
    with page.expect_navigation():
        form.get_by_role("button", name="Connect").click()
    assert "whsec_" in page.locator("main").inner_text()  # the secret, shown this once


def card_of(page, delivery: Delivery):
    return page.locator(f"#delivery-{delivery.id}")


def decide(card, button: str) -> None:
    """Click a decision in the review queue: decided in place, without a reload."""
    card.get_by_role("button", name=button).click()
    card.locator(".outcome").wait_for()


def submitted(job: MicroJob) -> list[Delivery]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Delivery)
            .where(Delivery.job_id == job.id, Delivery.status == "submitted")
            .order_by(Delivery.id)
        )
    )


def test_three_workers_reject_revise_accept_and_the_money_on_the_goal(
    page, owner, goal, market, mw, run_jobs, log_in, shot
):
    log_in(page, owner)
    connect(page, "sandbox", {"Name": "My sandbox", "Api key": sandbox_account(
        market.base_url, "ann", secret=None), "Base url": market.base_url})  # fmt: skip
    connect(
        page, "microworkers",
        {"Name": "Microworkers", "Api key": API_KEY, "Base url": mw.url, "Template id": "tpl1"},
    )  # fmt: skip
    page.goto("/settings/connections")
    row = page.locator("#connections tr", has_text="Microworkers")
    with page.expect_navigation():
        row.get_by_role("button", name="Test connection").click()
    assert "Microworkers answered" in page.locator("main").inner_text()
    assert [c.adapter for c in db.session.scalars(select(Connection).order_by(Connection.id))] == [
        "sandbox",
        "microworkers",
    ]
    assert mw.calls("GET", "/basic-campaigns")  # the test call reached the platform
    shot(page, "connections")

    # one job for three workers, on the sandbox connection
    job = tree.add_job(goal, title="Write a guest post")
    page.goto(f"/jobs/{job.id}/edit")
    page.get_by_label("Price per assignment").fill(PRICE)
    page.get_by_label("Assignments").fill("3")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    page.goto(f"/goals/{goal.id}")
    line = page.locator(f"li#job-{job.id}")
    line.get_by_label("Who does it").select_option("delegate")
    line.get_by_label("Channel").select_option(label="My sandbox (sandbox)")
    with page.expect_navigation():
        line.locator("form.mode").get_by_role("button", name="Save").click()
    with page.expect_navigation():
        page.locator(f"li#job-{job.id}").get_by_role("button", name="Dispatch").click()
    assert page.locator("#reserved").inner_text() == "37.50 USD"  # 3 x 12.50 held

    wait_until(lambda: run_jobs() >= 0 and len(submitted(job)) == 3, timeout=20, interval=0.2)
    one, two, three = submitted(job)
    assert len({d.assignment_id for d in (one, two, three)}) == 3  # one per worker's place

    page.goto("/review")
    card = card_of(page, one)
    card.locator("summary", has_text="Reject").click()
    card.get_by_label("Reason").fill("Off topic: the post is about cooking")
    decide(card, "Reject")
    card = card_of(page, two)
    card.locator("summary", has_text="Ask for a revision").click()
    card.get_by_label("What should change").fill("Add one link to our site")
    decide(card, "Send back for revision")
    decide(card_of(page, three), "Accept and pay")
    assert page.locator("#review-count").inner_text() == "0"  # two decided, one sent back
    shot(page, "decided")

    # the decisions reach the sandbox; its worker sends the revision; the owner accepts it
    def revised() -> list[Delivery]:
        run_jobs()
        return [d for d in submitted(job) if d.assignment_id == two.assignment_id]

    [again] = wait_until(revised, timeout=20, interval=0.2)
    page.goto("/review")
    decide(card_of(page, again), "Accept and pay")

    def settled() -> bool:
        run_jobs()
        return all(
            p.status in ("paid", "rejected")
            for p in db.session.scalars(select(Assignment).where(Assignment.job_id == job.id))
        )

    wait_until(settled, timeout=20, interval=0.2)
    page.goto(f"/goals/{goal.id}")
    assert page.locator("#spent").inner_text() == "25.00 USD"  # two paid, one rejected
    assert page.locator("#reserved").inner_text() == "0.00 USD"
    assert page.locator("#available").inner_text() == "75.00 USD"
    goal = fresh(goal)
    assert (goal.spent_cents, goal.reserved_cents) == (2_500, 0)
    assert fresh(job).status == Status.REJECTED  # one place is missing: it may be re-ordered
    places = db.session.scalars(
        select(Assignment).where(Assignment.job_id == job.id).order_by(Assignment.position)
    ).all()
    assert sorted((p.status, p.paid_cents) for p in places) == [
        ("paid", 1_250),
        ("paid", 1_250),
        ("rejected", 0),
    ]
    stats = market.stats()
    assert (stats["payments"], stats["paid_cents"], stats["double_payments"]) == (2, 2_500, 0)
    assert page.offsite_requests == [] and page.js_errors == []
    shot(page, "goal")
