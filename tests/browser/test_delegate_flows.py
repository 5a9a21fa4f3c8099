"""Delegating in a real browser, against the real sandbox marketplace on loopback: mark a job
delegate with a price and dispatch it, then review the sandbox's delivery and accept it.

The queues run in this process (`run_jobs`) between page steps. The sandbox's webhooks, signed
the Standard Webhooks way, go to the live server itself: its port is the apps'
`public_base_url`, so it is the callback URL every order carries.
"""

from __future__ import annotations

import json

import pytest
from fakes.connections import connect_sandbox
from fakes.sandbox_fixture import wait_until
from sqlalchemy import select

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Dispatch, Goal, InboundEvent, MicroJob
from dispatcher.planning import tree

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config, sandbox):
    return {
        **app_config,
        "sandbox_url": sandbox.base_url,
        "http_connect_timeout": 1.0,
        "http_read_timeout": 2.0,
    }


@pytest.fixture(autouse=True)
def connected(owner, sandbox):
    """The owner's sandbox connection: a real account there, its webhook URL (on the live
    server) and secret registered."""
    return connect_sandbox(owner.id, sandbox.base_url)


@pytest.fixture
def market(sandbox, live_server):
    """The sandbox, stopped before the live server: no webhook is on its way in while the
    server stops and the tables are emptied."""
    yield sandbox
    sandbox.stop()


def fresh(row):
    """The row as the database has it now (the live server committed in its own session)."""
    db.session.expire_all()
    return db.session.get(type(row), row.id)


def node(page, job: MicroJob):
    return page.locator(f"#tree li#job-{job.id}")


def chip(page, job: MicroJob) -> str:
    return node(page, job).locator(".node-line .chip").inner_text()


def test_delegate_and_dispatch_to_the_sandbox(
    page, owner, goal, market, run_jobs, live_server, log_in, shot
):
    market.control(pause_workers=True)  # nobody takes it yet: the order stays open
    job = tree.add_job(goal, title="Proofread the landing page")
    tree.add_job(goal, title="Write the landing page", mode="keep")
    log_in(page, owner)
    page.goto(f"/goals/{goal.id}")
    dispatch_all = page.locator("#dispatch-all button")
    assert dispatch_all.is_disabled()

    # the price, on the job's edit page
    with page.expect_navigation():
        node(page, job).get_by_role("link", name="Edit").click()
    page.get_by_label("Price per assignment").fill("12.50")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert page.get_by_text("Job saved.").is_visible()

    # delegate, to the sandbox
    node(page, job).get_by_label("Who does it").select_option("delegate")
    node(page, job).get_by_label("Channel").select_option(label="Sandbox (sandbox)")
    with page.expect_navigation():
        node(page, job).locator("form.mode").get_by_role("button", name="Save").click()
    meta = node(page, job).locator(".node-line .meta").inner_text()
    assert "→ sandbox" in meta and "12.50 USD" in meta
    assert dispatch_all.inner_text() == "Dispatch everything marked (1)"
    assert page.locator("#reserved").inner_text() == "0.00 USD"
    shot(page, "marked")

    with page.expect_navigation():
        node(page, job).get_by_role("button", name="Dispatch to sandbox").click()
    assert page.get_by_text("Queued for sandbox: Proofread the landing page").is_visible()
    assert chip(page, job) == "queued"
    assert page.locator("#reserved").inner_text() == "12.50 USD"
    assert page.locator("#available").inner_text() == "87.50 USD"
    assert dispatch_all.is_disabled()
    shot(page, "queued")

    assert run_jobs() >= 1  # the send task places the order at the sandbox
    page.reload()
    assert chip(page, job) == "dispatched"
    dispatch = db.session.scalars(select(Dispatch).where(Dispatch.job_id == job.id)).one()
    assert dispatch.state == "placed" and dispatch.external_id

    with page.expect_navigation():
        node(page, job).locator("a.title").click()
    row = page.locator(f"#dispatch-{dispatch.id}")
    assert row.locator("td").first.inner_text().startswith("sandbox")
    assert row.locator(".chip").inner_text() == "placed"
    order_link = row.get_by_role("link", name=dispatch.external_id)
    assert order_link.get_attribute("href") == f"{market.base_url}/orders/{dispatch.external_id}"
    assert page.locator("#job-reserved").inner_text() == "12.50 USD"
    assert page.locator("#timeline").get_by_text("queued → dispatched").is_visible()
    shot(page, "job")

    # the link names the platform's own record of the order (which only the account's key
    # opens, so the test reads it from the sandbox itself)
    order = market.market.get_order(dispatch.external_id)
    assert order["id"] == dispatch.external_id and order["status"] == "open"
    assert order["price_cents"] == 1_250 and order["title"] == "Proofread the landing page"
    assert order["callback_url"].startswith(f"{live_server.url}/webhooks/sandbox/")
    assert fresh(job).status == Status.DISPATCHED
    assert page.offsite_requests == [] and page.js_errors == []


def delivered_from_the_sandbox(goal: Goal, run_jobs) -> MicroJob:
    """A delegated job dispatched through the service the Dispatch button calls; the sandbox
    takes it, delivers, and signs its webhooks to the live server, whose stored events the
    queue applies."""
    job = tree.add_job(
        goal, title="Write a guest post", mode="delegate", channel="sandbox", price_cents=2_500,
        acceptance_criteria=["800 words", "one link to our site"],
    )  # fmt: skip
    dispatch_service.dispatch_job(job)

    def delivered() -> bool:
        run_jobs()
        return fresh(job).status == Status.DELIVERED

    wait_until(delivered, timeout=10, interval=0.1)
    return fresh(job)


def test_review_and_accept_the_sandboxs_delivery(page, owner, goal, market, run_jobs, log_in, shot):
    job = delivered_from_the_sandbox(goal, run_jobs)
    delivery = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id)).one()
    received = {json.loads(e.body)["type"] for e in db.session.scalars(select(InboundEvent))}
    assert "order.delivered" in received  # it came in through the webhook, signed
    log_in(page, owner)

    page.goto(f"/goals/{goal.id}")
    assert chip(page, job) == "delivered"
    assert page.locator("#reserved").inner_text() == "25.00 USD"
    assert page.locator("#spent").inner_text() == "0.00 USD"
    assert page.locator("#review-count").inner_text() == "1"
    with page.expect_navigation():
        page.get_by_role("link", name="Review queue").click()

    card = page.locator(f"#delivery-{delivery.id}")
    assert card.locator("a.title").inner_text() == "Write a guest post"
    assert delivery.content and card.locator(".content").inner_text() == delivery.content.strip()
    assert card.get_by_label("Pay").input_value() == "25.00"  # the price, by default
    card.get_by_label("Pay").fill("20.00")
    card.get_by_label("Rating").select_option("4")
    shot(page, "queue")
    card.get_by_role("button", name="Accept and pay").click()  # no reload: the item is swapped

    outcome = page.locator(f"#delivery-{delivery.id} .outcome")
    outcome.wait_for()
    assert outcome.inner_text().startswith(
        "Accepted “Write a guest post”: paying 20.00 USD once the platform confirms"
    )
    assert page.locator("#queue-count").inner_text() == "0"
    assert page.locator("#review-count").inner_text() == "0"
    assert fresh(job).status == Status.ACCEPTED

    run_jobs()  # the review goes to the sandbox, which pays the worker
    page.goto(f"/goals/{goal.id}")
    assert chip(page, job) == "paid"
    assert page.locator("#spent").inner_text() == "20.00 USD"
    assert page.locator("#reserved").inner_text() == "0.00 USD"
    assert page.locator("#available").inner_text() == "80.00 USD"
    goal = fresh(goal)
    assert (goal.spent_cents, goal.reserved_cents) == (2_000, 0)
    shot(page, "goal")

    with page.expect_navigation():
        node(page, job).locator("a.title").click()
    assert page.locator("#job-spent").inner_text() == "20.00 USD"
    review = page.locator(f"#delivery-{delivery.id} .reviews li")
    assert "Accepted" in review.inner_text() and "paid 20.00 USD · ★★★★" in review.inner_text()
    stats = market.stats()
    assert (stats["payments"], stats["double_payments"]) == (1, 0)
    assert page.offsite_requests == [] and page.js_errors == []
    shot(page, "job")
