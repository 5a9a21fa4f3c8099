"""Reviewing deliveries over HTTP: the queue, accept (pay, rate), revision, reject."""

from __future__ import annotations

import re

from fakes.work import event
from sqlalchemy import select

from adapters.base import EventKind
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.lifecycle import Status
from dispatcher.models import Review

from .conftest import page, reload


def _reviews():
    return db.session.scalars(select(Review)).all()


def test_the_queue_shows_what_came_back(client, delivered):
    delivery = delivered("Write a guest post")
    html = page(client.get("/review"))

    assert "Write a guest post" in html and "52 guest posts" in html
    assert "900 words on link building" in html
    assert 'href="https://example.com/draft/1"' in html and "from w42" in html
    assert re.search(r'id="review-count">1<', html)
    assert f'action="/deliveries/{delivery.id}/accept"' in html
    assert 'value="25.00"' in html  # the payout defaults to the price


def paid_at_platform(delivery) -> None:
    """The platform's word that it paid the submission, applied as its webhook would be."""
    dispatch = delivery.dispatch
    apply_event(
        dispatch.adapter,
        event(dispatch, EventKind.PAID, event_id=f"paid-{delivery.id}",
              delivery_id=delivery.external_id),
    )  # fmt: skip
    db.session.commit()


def test_accept_pays_the_price_and_rates(client, delivered, goal):
    delivery = delivered(price_cents=2_500)
    response = client.post(
        f"/deliveries/{delivery.id}/accept",
        data={"payout": "25.00", "rating": "5", "next": "/review"},
        follow_redirects=True,
    )
    assert "Accepted “Write a guest post”: paying 25.00 USD once the platform confirms" in page(
        response
    )
    assert "Nothing is waiting for your review" in page(response)

    (review,) = _reviews()
    assert (review.decision, review.payout_cents, review.rating) == ("accept", 2_500, 5)
    delivery = reload(delivery)
    assert delivery.status == "accepted" and delivery.job.status == Status.ACCEPTED
    goal = reload(goal)
    # "paying": the money stays held until the platform confirms the payment
    assert (goal.spent_cents, goal.reserved_cents) == (0, 2_500)
    paid_at_platform(delivery)
    goal = reload(goal)
    assert (goal.spent_cents, goal.reserved_cents) == (2_500, 0)
    assert reload(delivery).job.status == Status.PAID


def test_accept_with_a_smaller_payout_and_no_rating(client, delivered, goal):
    delivery = delivered(price_cents=2_500)
    client.post(f"/deliveries/{delivery.id}/accept", data={"payout": "20", "rating": ""})
    (review,) = _reviews()
    assert (review.payout_cents, review.rating) == (2_000, None)
    assert reload(goal).spent_cents == 0
    paid_at_platform(reload(delivery))
    assert (reload(goal).spent_cents, reload(goal).reserved_cents) == (2_000, 0)


def test_accept_refuses_a_payout_above_the_price(client, delivered):
    delivery = delivered(price_cents=2_500)
    response = client.post(f"/deliveries/{delivery.id}/accept", data={"payout": "99.00"})
    assert response.status_code == 400
    html = page(response)
    assert "payout must be between 0 and the job&#39;s price" in html
    assert 'value="99.00"' in html
    assert _reviews() == [] and reload(delivery).status == "submitted"

    response = client.post(f"/deliveries/{delivery.id}/accept", data={"payout": "lots"})
    assert response.status_code == 400 and "is not an amount" in page(response)
    response = client.post(f"/deliveries/{delivery.id}/accept", data={"rating": "9"})
    assert response.status_code == 400 and "Not a valid choice" in page(response)
    assert _reviews() == []


def test_request_a_revision(client, delivered):
    delivery = delivered()
    response = client.post(f"/deliveries/{delivery.id}/revise", data={"feedback": "  "})
    assert response.status_code == 400
    assert "say what should change" in page(response)
    assert '<details class="decision" data-decision="revise" open>' in page(response)

    response = client.post(
        f"/deliveries/{delivery.id}/revise",
        data={"feedback": "Add two examples from our customers"},
        follow_redirects=True,
    )
    assert "Asked for a revision" in page(response)
    delivery = reload(delivery)
    assert delivery.status == "revision_requested"
    assert delivery.job.status == Status.REVISION_REQUESTED
    (review,) = _reviews()
    assert (review.decision, review.feedback) == ("revise", "Add two examples from our customers")

    detail = page(client.get(f"/jobs/{delivery.job_id}"))
    assert "Revision asked" in detail and "Add two examples from our customers" in detail


def test_reject_releases_the_money(client, delivered, goal):
    delivery = delivered(price_cents=2_500)
    assert reload(goal).reserved_cents == 2_500
    response = client.post(f"/deliveries/{delivery.id}/reject", data={"reason": ""})
    assert response.status_code == 400
    assert "give a reason: the worker sees it" in page(response)

    response = client.post(
        f"/deliveries/{delivery.id}/reject",
        data={"reason": "Copied from another site", "next": f"/jobs/{delivery.job_id}"},
        follow_redirects=True,
    )
    html = page(response)
    assert "its money is released" in html
    assert f'action="/jobs/{delivery.job_id}/retry"' in html  # it can go out again
    delivery = reload(delivery)
    assert delivery.status == "rejected" and delivery.job.status == Status.REJECTED
    assert reload(goal).reserved_cents == 0


def test_review_from_the_job_page(client, delivered):
    delivery = delivered()
    html = page(client.get(f"/jobs/{delivery.job_id}"))
    assert 'name="origin" value="job"' in html
    assert f'action="/deliveries/{delivery.id}/reject"' in html

    response = client.post(
        f"/deliveries/{delivery.id}/reject", data={"reason": " ", "origin": "job"}
    )
    assert response.status_code == 400
    assert 'id="timeline"' in page(response)  # back on the job page, not the queue
    assert "give a reason" in page(response)


def test_deciding_twice_is_a_message(client, delivered):
    delivery = delivered()
    client.post(f"/deliveries/{delivery.id}/accept", data={"payout": ""})
    response = client.post(
        f"/deliveries/{delivery.id}/reject", data={"reason": "changed my mind"},
        follow_redirects=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert "this delivery was already accepted" in page(response)
    assert [r.decision for r in _reviews()] == ["accept"]


def test_a_delivery_link_leads_to_its_job(client, delivered):
    delivery = delivered()
    response = client.get(f"/deliveries/{delivery.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/jobs/{delivery.job_id}#delivery-{delivery.id}")


def test_only_web_links_are_clickable(client, delivered):
    delivery = delivered()
    delivery.url = "javascript:alert(1)"
    db.session.commit()
    html = page(client.get(f"/jobs/{delivery.job_id}"))
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html  # shown as text
