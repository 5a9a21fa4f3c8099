"""Deliveries and reviews over the API, on a job moved to "delivered" through the lifecycle."""

from __future__ import annotations

import pytest
from fakes.work import deliver
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Delivery, Dispatch, Goal, MicroJob, Review

from .helpers import assert_problem


@pytest.fixture
def delivery(api, goal, new_job) -> Delivery:
    """A $25 job of Ann's, dispatched through the API, delivered by a platform worker."""
    job = new_job("Write a guest post", price_cents=2_500)
    api.post(f"/api/v1/jobs/{job['id']}/delegate", json={"channel": "sandbox"})
    sent = api.post(f"/api/v1/jobs/{job['id']}/dispatch").get_json()
    return deliver(
        db.session.get(Dispatch, sent["id"]),
        "sub-1",
        worker="w-42",
        content="Here is the post.",
        url="https://example.test/post",
    )


def test_list_and_get_deliveries_awaiting_review(api, delivery):
    listed = api.get("/api/v1/deliveries")
    assert listed.status_code == 200
    [item] = listed.get_json()
    assert item["id"] == delivery.id
    assert (item["job_status"], item["status"], item["price_cents"]) == (
        "delivered",
        "submitted",
        2_500,
    )
    assert (item["content"], item["worker_ref"], item["reviews"]) == (
        "Here is the post.",
        "w-42",
        [],
    )
    assert api.get(f"/api/v1/deliveries/{delivery.id}").get_json() == item


def test_accept_pays_and_moves_the_job(api, goal, delivery):
    response = api.post(
        f"/api/v1/deliveries/{delivery.id}/accept", json={"payout_cents": 2_000, "rating": 5}
    )
    assert response.status_code == 201, response.get_json()
    review = response.get_json()
    assert (review["decision"], review["payout_cents"], review["rating"]) == ("accept", 2_000, 5)
    assert review["job_status"] == "accepted"
    db.session.expire_all()
    assert db.session.get(Review, review["id"]).delivery_id == delivery.id
    assert db.session.get(Delivery, delivery.id).status == "accepted"
    assert db.session.get(MicroJob, delivery.job_id).status == "accepted"
    money = db.session.get(Goal, goal["id"])
    # "paying": held until the platform confirms the payment (the review push), then spent
    assert (money.reserved_cents, money.spent_cents) == (2_500, 0)
    assert db.session.get(Review, review["id"]).push_state == "owed"
    assert api.get("/api/v1/deliveries").get_json() == []
    shown = api.get(f"/api/v1/deliveries/{delivery.id}").get_json()
    assert [r["decision"] for r in shown["reviews"]] == ["accept"]

    again = assert_problem(api.post(f"/api/v1/deliveries/{delivery.id}/accept", json={}), 409)
    assert "already accepted" in again["detail"]
    assert_problem(api.post(f"/api/v1/deliveries/{delivery.id}/reject", json={"reason": "x"}), 409)


def test_accept_with_no_body_pays_the_full_price(api, goal, delivery):
    response = api.post(f"/api/v1/deliveries/{delivery.id}/accept")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["payout_cents"] == 2_500


def test_revise_asks_for_changes(api, delivery):
    response = api.post(
        f"/api/v1/deliveries/{delivery.id}/revise", json={"feedback": "  Add a source. "}
    )
    assert response.status_code == 201
    assert response.get_json()["feedback"] == "Add a source."
    assert response.get_json()["job_status"] == "revision_requested"
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).status == "revision_requested"


def test_reject_releases_the_money(api, goal, delivery):
    response = api.post(f"/api/v1/deliveries/{delivery.id}/reject", json={"reason": "Off topic"})
    assert response.status_code == 201
    assert response.get_json()["job_status"] == "rejected"
    db.session.expire_all()
    assert db.session.get(Goal, goal["id"]).reserved_cents == 0
    dispatch = db.session.scalars(select(Dispatch).where(Dispatch.job_id == delivery.job_id)).one()
    assert dispatch.state == "closed"
    # A rejected job can go out again.
    assert api.post(f"/api/v1/jobs/{delivery.job_id}/retry").status_code == 202


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("accept", {"payout_cents": -1}, "payout_cents"),
        ("accept", {"payout_cents": "25.00"}, "payout_cents"),
        ("accept", {"rating": 6}, "rating"),
        ("accept", {"rating": 0}, "rating"),
        ("accept", {"rating": 4.5}, "rating"),
        ("accept", {"tip": 100}, "tip"),
        ("revise", {}, "feedback"),
        ("revise", {"feedback": "   "}, "feedback"),
        ("revise", {"feedback": 3}, "feedback"),
        ("reject", {}, "reason"),
        ("reject", {"reason": ""}, "reason"),
    ],
)
def test_review_input_errors_are_422_per_field(api, delivery, action, body, field):
    response = api.post(f"/api/v1/deliveries/{delivery.id}/{action}", json=body)
    assert field in assert_problem(response, 422)["errors"]["json"]
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).status == "submitted"
    assert db.session.scalars(select(Review)).all() == []


def test_payout_above_the_price_is_422_with_the_services_message(api, delivery):
    response = api.post(f"/api/v1/deliveries/{delivery.id}/accept", json={"payout_cents": 2_501})
    problem = assert_problem(response, 422)
    assert "payout must be between 0 and the job's price" in problem["detail"]
    assert problem["title"] == "Unprocessable Entity"
    assert db.session.get(MicroJob, delivery.job_id).status == "delivered"


def test_review_of_a_job_no_longer_awaiting_review_is_409(api, delivery):
    assert api.post(f"/api/v1/jobs/{delivery.job_id}/cancel").status_code == 200
    problem = assert_problem(api.post(f"/api/v1/deliveries/{delivery.id}/accept", json={}), 409)
    assert "cancelled" in problem["detail"]


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "/accept", {}),
        ("post", "/revise", {"feedback": "mine"}),
        ("post", "/reject", {"reason": "mine"}),
    ],
)
def test_another_owners_delivery_is_404(api, bob_api, delivery, method, suffix, body):
    url = f"/api/v1/deliveries/{delivery.id}{suffix}"
    assert_problem(getattr(bob_api, method)(url, json=body), 404)
    assert bob_api.get("/api/v1/deliveries").get_json() == []
    db.session.expire_all()
    assert db.session.get(Delivery, delivery.id).status == "submitted"
    assert_problem(getattr(api, method)("/api/v1/deliveries/424242" + suffix, json=body), 404)
