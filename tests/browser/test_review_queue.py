"""Issue 11 part 4 in a real browser: twenty deliveries reviewed by keyboard alone with no
reload, accept selected at their price, an error that keeps the typed feedback; and the
part-1 leftovers: Today and a parent's summary updating live."""

from __future__ import annotations

import pytest
from fakes.connections import connect_sandbox
from fakes.work import deliver, place
from sqlalchemy import select

from browser.conftest import wait_for_js
from browser.test_owner_day import app_config, stream, stream_socket  # noqa: F401  (fixtures)
from dispatcher.dispatch import review as decisions
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Delivery, Review
from dispatcher.planning import tree

pytestmark = pytest.mark.browser


def _delivered(goal, n: int, *, parent=None, price_cents: int = 100) -> list[Delivery]:
    out = []
    for i in range(n):
        job = tree.add_job(
            goal, title=f"Guest post {i + 1:02d}", parent=parent, mode="delegate",
            channel="sandbox", price_cents=price_cents,
            acceptance_criteria=["800 words or more", "one link to our guide"],
        )  # fmt: skip
        out.append(deliver(dispatch_service.dispatch_job(job), f"sub-{job.id}", content="Text"))
    return out


def _decisions() -> dict[int, str]:
    db.session.expire_all()
    return {r.delivery_id: r.decision for r in db.session.scalars(select(Review))}


def _decided(page, delivery_id: int) -> None:
    wait_for_js(
        page, f"!document.querySelector('#delivery-{delivery_id}').classList.contains('open')"
    )


def test_twenty_deliveries_reviewed_by_keyboard_alone(page, log_in, owner, goal, shot):
    connect_sandbox(owner.id)
    deliveries = _delivered(goal, 20)
    log_in(page, owner)
    page.goto("/review")
    wait_for_js(page, "document.body.dataset.reviewQueue === 'ready'")
    page.evaluate("window.notReloaded = true")
    assert page.locator("#queue-count").inner_text() == "20"
    shot(page, "queue")

    # j and k move between deliveries
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.id") == f"delivery-{deliveries[0].id}"
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.evaluate("document.activeElement.id") == f"delivery-{deliveries[1].id}"
    page.keyboard.press("k")

    expected = {}
    for i, delivery in enumerate(deliveries):
        assert page.evaluate("document.activeElement.id") == f"delivery-{delivery.id}", i
        if i % 3 == 0:
            page.keyboard.press("a")
            expected[delivery.id] = "accept"
        elif i % 3 == 1:
            page.keyboard.press("r")
            assert page.evaluate("document.activeElement.name") == "feedback"
            page.keyboard.type("Please add two sources.")  # 'a', 'r', 'x' typed, not fired
            page.keyboard.press("Control+Enter")
            expected[delivery.id] = "revise"
        else:
            page.keyboard.press("x")
            assert page.evaluate("document.activeElement.name") == "reason"
            page.keyboard.type("Off topic: rejected, sorry.")
            page.keyboard.press("Control+Enter")
            expected[delivery.id] = "reject"
        _decided(page, delivery.id)

    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#queue-count").inner_text() == "0"
    assert page.locator("#review-count").inner_text() == "0"
    assert page.locator("article.delivery.open").count() == 0
    assert _decisions() == expected
    feedback = {r.feedback for r in db.session.scalars(select(Review)) if r.decision == "revise"}
    assert feedback == {"Please add two sources."}
    shot(page, "all-decided")
    assert page.js_errors == [] and page.offsite_requests == []


def test_accept_selected_at_their_price(page, log_in, owner, goal, shot):
    connect_sandbox(owner.id)
    one, two, three = _delivered(goal, 3, price_cents=700)
    log_in(page, owner)
    page.goto("/review")
    page.check(f"#select-{one.id}")
    page.check(f"#select-{three.id}")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click("text=Accept selected at their price")
    assert "Accepted 2 deliveries at their price." in page.locator(".flash.success").inner_text()
    assert _decisions() == {one.id: "accept", three.id: "accept"}
    assert page.locator("article.delivery").count() == 1
    assert page.locator(f"#delivery-{two.id}").count() == 1
    shot(page)
    assert page.js_errors == []


def test_an_error_keeps_the_typed_feedback(page, log_in, owner, goal):
    connect_sandbox(owner.id)
    first, second = _delivered(goal, 2)
    log_in(page, owner)
    page.goto("/review")
    wait_for_js(page, "document.body.dataset.reviewQueue === 'ready'")
    page.evaluate("window.notReloaded = true")

    # More than the price: the form comes back with its error and what was typed.
    payout = page.locator(f"#d{first.id}-accept-payout")
    payout.fill("999.00")
    payout.press("Enter")
    page.wait_for_selector(f"#delivery-{first.id} .field.invalid")
    assert page.locator(f"#d{first.id}-accept-payout").input_value() == "999.00"
    assert "price" in page.locator(f"#delivery-{first.id} p.error").inner_text()
    assert page.evaluate("document.activeElement.id") == f"d{first.id}-accept-payout"
    assert _decisions() == {}

    # Decided elsewhere meanwhile: refused, the reason beside the form, the text kept.
    box = page.locator(f"#d{second.id}-revise-feedback")
    page.locator(f"#delivery-{second.id} details[data-decision=revise] summary").click()
    box.fill("Shorter paragraphs, please.")
    decisions.accept(db.session.get(Delivery, second.id))
    box.press("Control+Enter")
    page.wait_for_selector(f"#delivery-{second.id} .inline-error")
    assert "already accepted" in page.locator(f"#delivery-{second.id} .inline-error").inner_text()
    assert box.input_value() == "Shorter paragraphs, please."

    # The server does not answer: the reason beside the form, the text kept, nothing decided.
    page.route("**/deliveries/*/reject", lambda route: route.abort())
    reason = page.locator(f"#d{first.id}-reject-reason")
    page.locator(f"#delivery-{first.id} details[data-decision=reject] summary").click()
    reason.fill("Not what we asked for.")
    reason.press("Control+Enter")
    page.wait_for_selector(f"#delivery-{first.id} details[data-decision=reject] .inline-error")
    assert "did not answer" in page.locator(f"#delivery-{first.id} .inline-error").inner_text()
    assert reason.input_value() == "Not what we asked for."
    assert set(_decisions().values()) == {"accept"}  # only the one decided elsewhere
    assert page.evaluate("window.notReloaded") is True
    assert page.js_errors == []


def test_shortcuts_never_fire_while_typing_in_a_field(page, log_in, owner, goal):
    connect_sandbox(owner.id)
    (delivery,) = _delivered(goal, 1)
    log_in(page, owner)
    page.goto("/review")
    wait_for_js(page, "document.body.dataset.reviewQueue === 'ready'")
    page.locator(f"#d{delivery.id}-accept-payout").click()
    page.keyboard.type("a")
    page.locator("#filter-goal").focus()
    page.keyboard.press("x")
    page.wait_for_timeout(300)
    assert _decisions() == {}
    assert page.locator(f"#delivery-{delivery.id}.open").count() == 1
    page.keyboard.press("Escape")
    page.locator("h1").click()
    page.keyboard.press("?")
    assert page.evaluate("document.activeElement.id") == "shortcuts"


def test_today_and_a_parents_summary_update_live(page, log_in, owner, goal, stream, shot):  # noqa: F811
    connect_sandbox(owner.id)
    parent = tree.add_job(goal, title="Publish 2 guest posts")
    jobs, orders = [], []
    for title in ("Post one", "Post two"):
        job = tree.add_job(
            goal, title=title, parent=parent, mode="delegate", channel="sandbox", price_cents=300
        )
        orders.append(dispatch_service.dispatch_job(job))
        jobs.append(job)
    place(orders[0])
    db.session.commit()

    log_in(page, owner)
    page.goto("/today")
    page.evaluate("window.notReloaded = true")
    assert page.locator("#review li").count() == 0
    waiting = page.locator(f'#out [data-waiting-of="{jobs[0].id}"]').inner_text()
    assert waiting.startswith("waiting for a worker to take it since ")
    page.wait_for_timeout(300)  # the stream connects

    deliver(orders[0], "sub-1", content="The post")
    wait_for_js(page, "document.querySelectorAll('#review li').length === 1", timeout=3.0)
    assert "Post one" in page.locator("#review").inner_text()
    assert page.locator(f'#out [data-waiting-of="{jobs[0].id}"]').count() == 0
    assert page.evaluate("window.notReloaded") is True
    shot(page, "today-live")

    page.goto(f"/goals/{goal.id}")
    page.evaluate("window.notReloaded = true")
    chip = f'[data-summary-of="{parent.id}"]'
    before = page.locator(chip).inner_text()
    assert before == "1 out, 1 to review"
    page.wait_for_timeout(300)
    deliver(orders[1], "sub-2", content="The second post")
    wait_for_js(
        page,
        f"document.querySelector('{chip}').textContent !== {before!r}",
        timeout=3.0,
    )
    assert page.locator(chip).inner_text() == "2 to review"
    assert page.evaluate("window.notReloaded") is True
    assert page.js_errors == [] and page.offsite_requests == []


@pytest.mark.parametrize("width", [1280, 390])
def test_a_long_title_never_pushes_the_badge_off(page, log_in, owner, goal, shot, width):
    connect_sandbox(owner.id)
    job = tree.add_job(
        goal, title="Write " + "a-very-long-unbroken-title-" * 8 + " and then some more words " * 6,
        mode="delegate", channel="sandbox", price_cents=100,
        acceptance_criteria=["800 words or more"],
    )  # fmt: skip
    delivery = deliver(dispatch_service.dispatch_job(job), "sub-1", content="Text")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, owner)
    page.goto("/review")
    card = page.locator(f"#delivery-{delivery.id}")
    box, chip = card.bounding_box(), card.locator("header .chip").bounding_box()
    title = card.locator("header a.title").bounding_box()
    head = card.locator("header").bounding_box()
    assert chip["x"] + chip["width"] <= box["x"] + box["width"]  # inside the card
    assert chip["y"] - head["y"] < 16  # on the header's first line, not wrapped below
    assert title["x"] + title["width"] <= chip["x"]  # the title wraps in its own column
    # nothing of the queue sticks out of the window (the site's nav is issue 11 part 8's)
    wide = page.evaluate(
        "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right"
        " > window.innerWidth + 1).map(e => e.tagName + '.' + e.className)"
    )
    assert wide == []
    criteria = card.locator("fieldset.criteria")
    assert criteria.is_visible()  # never folded away
    shot(page, f"w{width}")
