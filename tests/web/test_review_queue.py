"""Issue 11 part 4, the review queue built for speed, server side: accept selected at their
price (counts, refusals with their reason, no double pay), filters by goal and by channel
in the URL with a constant number of queries, the items the queue's script swaps in, and the
acceptance criteria shown beside the work."""

from __future__ import annotations

import re

import pytest
from fakes.connections import connect_sandbox
from fakes.work import deliver
from sqlalchemy import select

from dispatcher.dispatch import review as decisions
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Review
from dispatcher.planning import tree

from .conftest import page, reload
from .test_query_counts import counting

FRAGMENT = {"X-Fragment": "1"}


def _reviews() -> list[Review]:
    return list(db.session.scalars(select(Review).order_by(Review.id)))


def _flashes(html: str) -> list[str]:
    """The page's messages, but the sign-up's welcome (still pending in these tests)."""
    found = re.findall(r'<div class="flash [a-z]+"[^>]*>(.*?)</div>', html, re.S)
    return [re.sub(r"\s+", " ", m) for m in found if not m.startswith("Welcome")]


# --- accept selected ---------------------------------------------------------------------------


def test_accept_selected_accepts_each_at_its_price(client, delivered, goal):
    one = delivered("Write post one", price_cents=2_500)
    two = delivered("Write post two", price_cents=1_000)
    three = delivered("Write post three", price_cents=500)
    response = client.post(
        "/review/accept-selected",
        data={"ids": [str(one.id), str(three.id)], "next": "/review"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert _flashes(page(response)) == ["Accepted 2 deliveries at their price."]
    reviews = _reviews()
    assert [(r.delivery_id, r.decision, r.payout_cents) for r in reviews] == [
        (one.id, "accept", 2_500), (three.id, "accept", 500),
    ]  # fmt: skip
    assert reload(two).status == "submitted"  # not ticked: still waiting
    assert reload(one).job.status == Status.ACCEPTED
    # "paying": held until each platform confirms, nothing spent twice or early
    assert (reload(goal).spent_cents, reload(goal).reserved_cents) == (0, 4_000)
    assert "Write post two" in page(response) and "Write post one" not in page(response)


def test_the_same_id_twice_pays_once(client, delivered, goal):
    delivery = delivered(price_cents=2_500)
    response = client.post(
        "/review/accept-selected",
        data={"ids": [str(delivery.id), str(delivery.id)]},
        follow_redirects=True,
    )
    assert _flashes(page(response)) == ["Accepted 1 delivery at their price."]
    assert [(r.delivery_id, r.payout_cents) for r in _reviews()] == [(delivery.id, 2_500)]
    assert reload(goal).reserved_cents == 2_500

    again = client.post(
        "/review/accept-selected", data={"ids": [str(delivery.id)]}, follow_redirects=True
    )
    (refusal,) = _flashes(page(again))
    assert refusal.startswith("Not accepted (1): “Write a guest post”: ")
    assert "already accepted" in refusal
    assert len(_reviews()) == 1 and reload(goal).reserved_cents == 2_500


def test_refusals_are_listed_with_their_reason_and_the_rest_accepted(client, delivered):
    good = delivered("Good post")
    decided = delivered("Decided post")
    decisions.reject(decided, reason="off topic")
    cancelled = delivered("Cancelled post")
    tree.act(reload(cancelled).job, "cancel")
    response = client.post(
        "/review/accept-selected",
        data={"ids": [str(decided.id), str(good.id), "999999", str(cancelled.id)]},
        follow_redirects=True,
    )
    accepted, refused = _flashes(page(response))
    assert accepted == "Accepted 1 delivery at their price."
    assert refused.startswith("Not accepted (3): ")
    assert "“Decided post”: " in refused and "already rejected" in refused
    assert "“delivery #999999”: not found" in refused
    assert "“Cancelled post”: " in refused
    assert [r.delivery_id for r in _reviews() if r.decision == "accept"] == [good.id]


def test_another_owners_delivery_is_refused_as_unknown(client, bob_client, delivered):
    delivery = delivered()
    response = bob_client.post(
        "/review/accept-selected", data={"ids": [str(delivery.id)]}, follow_redirects=True
    )
    assert f"“delivery #{delivery.id}”: not found" in page(response)
    assert _reviews() == [] and reload(delivery).status == "submitted"


@pytest.mark.parametrize(
    ("ids", "status", "text"),
    [
        ([], 303, None),
        (["abc"], 400, "must be numbers"),
        ([str(i) for i in range(1, 602)], 400, "at most 500"),
    ],
)
def test_a_bad_selection_is_a_clear_4xx(client, ann, ids, status, text):
    response = client.post("/review/accept-selected", data={"ids": ids})
    assert response.status_code == status
    if text:
        assert text in page(response)
    else:
        assert "Tick the deliveries" in page(client.get("/review"))


# --- filters -----------------------------------------------------------------------------------


@pytest.fixture
def second_goal(ann):
    return tree.create_goal(ann.id, title="Podcast tour", budget_cents=10_000, currency="USD")


def _deliver_job(goal, title: str, connection_id: int | None = None):
    fields = {"mode": "delegate", "channel": "sandbox", "price_cents": 300}
    if connection_id is not None:
        fields["connection_id"] = connection_id
    job = tree.add_job(goal, title=title, **fields)
    dispatch = dispatch_service.dispatch_job(job)
    return deliver(dispatch, f"sub-{job.id}", content="done")


def test_filter_by_goal_and_by_channel(client, ann, goal, second_goal):
    other = connect_sandbox(ann.id, label="Second sandbox")
    _deliver_job(goal, "Post via first")
    _deliver_job(goal, "Post via second", other.id)
    _deliver_job(second_goal, "Podcast via first")

    def titles(url: str) -> set[str]:
        html = page(client.get(url))
        return set(re.findall(r'class="title" href="/jobs/\d+">([^<]+)<', html))

    everything = {"Post via first", "Post via second", "Podcast via first"}
    assert titles("/review") == everything
    assert titles(f"/review?goal={goal.id}") == {"Post via first", "Post via second"}
    assert titles(f"/review?channel={other.id}") == {"Post via second"}
    assert titles(f"/review?goal={second_goal.id}&channel={other.id}") == set()
    html = page(client.get(f"/review?goal={goal.id}&channel={other.id}"))
    assert f'<option value="{goal.id}" selected>' in html
    assert f'<option value="{other.id}" selected>' in html
    # the decision forms come back to the filtered queue
    assert f'name="next" value="/review?goal={goal.id}&amp;channel={other.id}"' in html


@pytest.mark.parametrize("query", ["goal=abc", "channel=1%3B", "goal=-2"])
def test_a_bad_filter_is_a_400(client, ann, query):
    response = client.get(f"/review?{query}")
    assert response.status_code == 400
    assert "filter must be a number" in page(response)


def test_filtered_queue_queries_do_not_grow(client, ann, goal, second_goal):
    other = connect_sandbox(ann.id, label="Second sandbox")

    def count(url: str) -> int:
        with counting() as statements:
            assert client.get(url).status_code == 200
        return len(statements)

    urls = ["/review", f"/review?goal={goal.id}", f"/review?channel={other.id}"]
    _deliver_job(goal, "Post 0", other.id)
    small = [count(url) for url in urls]
    for n in range(1, 12):
        _deliver_job(goal if n % 2 else second_goal, f"Post {n}", other.id if n % 3 else None)
    big = [count(url) for url in urls]
    assert big == small
    assert max(big) <= 12


# --- what the queue's script gets back ---------------------------------------------------------


def test_accept_answers_the_script_with_the_decided_item(client, delivered):
    delivery = delivered(price_cents=2_500)
    response = client.post(
        f"/deliveries/{delivery.id}/accept",
        data={"payout": "25.00", "next": "/review"},
        headers=FRAGMENT,
    )
    html = page(response)
    assert response.status_code == 200
    assert html.lstrip().startswith(
        f'<article class="delivery in-queue" id="delivery-{delivery.id}"'
    )
    assert "<html" not in html and "<form" not in html  # decided: no decision forms left
    assert "Accepted “Write a guest post”: paying 25.00 USD" in html
    assert "Accepted</strong>" in html  # its review, in the item


def test_a_failed_form_comes_back_with_its_error_and_typed_text(client, delivered):
    delivery = delivered()
    typed = "x" * 5001
    response = client.post(
        f"/deliveries/{delivery.id}/revise", data={"feedback": typed}, headers=FRAGMENT
    )
    html = page(response)
    assert response.status_code == 400
    assert "<html" not in html
    assert 'data-decision="revise" open>' in html
    assert typed in html and 'aria-invalid="true"' in html
    assert reload(delivery).status == "submitted"


def test_a_refused_decision_answers_409_with_the_reason(client, delivered):
    delivery = delivered()
    decisions.accept(delivery)
    response = client.post(
        f"/deliveries/{delivery.id}/reject", data={"reason": "late"}, headers=FRAGMENT
    )
    assert response.status_code == 409
    assert re.search(
        r'class="flash error outcome" role="alert">[^<]*already accepted', page(response)
    )


def test_without_the_script_the_forms_still_redirect(client, delivered):
    delivery = delivered()
    response = client.post(f"/deliveries/{delivery.id}/accept", data={"next": "/review"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/review")


# --- the item ----------------------------------------------------------------------------------


def test_criteria_are_a_checklist_beside_the_work(client, make_job):
    job = make_job(
        "Write a guest post", mode="delegate", channel="sandbox", price_cents=2_500,
        acceptance_criteria=["900 words or more", "links to our guide"],
    )  # fmt: skip
    deliver(dispatch_service.dispatch_job(job), "sub-1", content="The post")
    html = page(client.get("/review"))
    block = html[html.index('<div class="work-and-criteria with-criteria">') :]
    block = block[: block.index("</fieldset>")]
    assert "The post" in block  # the work and its criteria in one block
    assert "<details" not in block  # never folded away
    assert len(re.findall(r'<input type="checkbox" id="crit-', block)) == 2
    assert "900 words or more" in block and "links to our guide" in block


def test_shortcuts_are_listed_on_the_page(client, delivered):
    delivered()
    html = page(client.get("/review"))
    for key, what in [("j", "next"), ("k", "previous"), ("a", "accept"), ("r", "revision"),
                      ("x", "reject"), ("?", "show these")]:  # fmt: skip
        assert re.search(rf"<kbd>{re.escape(key)}</kbd></dt><dd>[^<]*{what}", html), key
    assert '<script src="/static/js/review-queue.js" defer></script>' in html
