"""Issue 11 part 8: usable by keyboard alone. Tab through the main nav, then add a job, give
it a price, delegate it, dispatch it and accept its delivery with the keyboard only; every
stop of the focus is visibly marked."""

from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox
from fakes.work import deliver
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Delivery, Dispatch, MicroJob

pytestmark = pytest.mark.browser

#: what has the focus, and whether it is marked (an outline or a shadow)
FOCUSED = """() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  const marked = (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0)
    || s.boxShadow !== "none";
  const name = e.getAttribute("aria-label") || e.placeholder || e.innerText || e.value || "";
  return {tag: e.tagName.toLowerCase(), name: name.trim().split("\\n")[0], marked: marked,
          id: e.id || ""};
}"""


def tab_to(page, matches, limit: int = 200) -> dict:
    """Press Tab until the focused element `matches` (a predicate on FOCUSED's answer),
    checking that every element the focus passes is visibly marked."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused["marked"], f"focus not visible on {focused}"
        if matches(focused):
            return focused
    raise AssertionError(f"never reached by Tab within {limit} presses")


def named(text: str):
    return lambda f: f["name"].startswith(text)


def press_and_wait(page, key: str = "Enter") -> None:
    with page.expect_navigation():
        page.keyboard.press(key)


def test_the_main_nav_by_keyboard(page, owner, goal, log_in, shot):
    log_in(page, owner)
    page.goto("/today")
    stops = []
    for _ in range(8):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        assert focused["marked"], f"focus not visible on {focused}"
        stops.append(focused["name"].rstrip("0123456789"))  # the review count's badge
    assert stops == [
        "Dispatcher", "Goals", "Today", "Review queue", "Playbooks", "Status", "People",
        "Connections",
    ]  # fmt: skip
    shot(page, "focus-on-connections")
    press_and_wait(page)
    assert page.url.endswith("/settings/connections")


def test_add_delegate_dispatch_and_review_by_keyboard(page, owner, goal, log_in, shot):
    connect_sandbox(owner.id)
    log_in(page, owner)
    page.goto(f"/goals/{goal.id}")

    # add a job
    tab_to(page, lambda f: f["id"] == "top-title")
    page.keyboard.type("Proofread the landing page")
    press_and_wait(page)
    job = db.session.scalars(select(MicroJob).where(MicroJob.goal_id == goal.id)).one()
    assert job.title == "Proofread the landing page"

    # its price, on its edit page
    tab_to(page, lambda f: f["tag"] == "a" and f["name"] == "Edit")
    press_and_wait(page)
    tab_to(page, lambda f: f["id"] == "price")
    page.keyboard.type("12.50")
    press_and_wait(page)
    assert page.get_by_text("Job saved.").is_visible()

    # delegate it to the sandbox: the selects answer to typed letters
    page.goto(f"/goals/{goal.id}")
    tab_to(page, lambda f: f["id"] == f"j{job.id}-mode")
    page.keyboard.type("Delegate")
    tab_to(page, lambda f: f["id"] == f"j{job.id}-channel")
    page.keyboard.type("Sandbox")
    shot(page, "delegating")
    tab_to(page, lambda f: f["tag"] == "button" and f["name"] == "Save")
    press_and_wait(page)
    db.session.expire_all()
    job = db.session.get(MicroJob, job.id)
    assert (job.mode, job.channel, job.price_cents) == ("delegate", "sandbox", 1250)

    # dispatch it
    tab_to(page, named("Dispatch to sandbox"))
    press_and_wait(page)
    assert page.get_by_text("Queued for sandbox: Proofread the landing page").is_visible()

    # the work comes back (what the send task and the platform's webhook do) ...
    db.session.expire_all()
    dispatch = db.session.scalars(select(Dispatch).where(Dispatch.job_id == job.id)).one()
    delivery = deliver(dispatch, "sub-1", content="Proofread, 3 typos fixed.")

    # ... and is accepted from the review queue
    page.goto("/today")
    tab_to(page, named("Review queue"))
    press_and_wait(page)
    tab_to(page, lambda f: f["tag"] == "button" and f["name"] == "Accept and pay")
    shot(page, "accepting")
    page.keyboard.press("Enter")  # decided in place, without a reload
    page.locator(f"#delivery-{delivery.id} .outcome").wait_for()
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).status == "accepted"
    assert page.js_errors == [] and page.offsite_requests == []
