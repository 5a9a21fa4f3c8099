"""Jobs over the API: create, change, split, keep, delegate, dispatch, retry, cancel."""

from __future__ import annotations

import pytest
from rq.job import Job
from sqlalchemy import select

from dispatcher.dispatch import send
from dispatcher.extensions import db
from dispatcher.models import Dispatch, Goal, MicroJob
from dispatcher.queues import DISPATCH, get_queue, redis_connection

from .helpers import assert_problem


def _delegated(api, new_job, **fields) -> dict:
    job = new_job("Write a guest post", price_cents=2_500, **fields)
    response = api.post(
        f"/api/v1/jobs/{job['id']}/delegate",
        json={"channel": "sandbox", "channel_options": {"level": "pro"}},
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_create_get_and_patch_a_job(api, goal, new_job):
    job = new_job(
        "  Outline the post ",
        brief="800 words on micro-jobs",
        acceptance_criteria=["cites two sources"],
        estimate_minutes=45,
        due_date="2026-07-01",
        price_cents=1_500,
        assignments=2,
    )
    assert job["title"] == "Outline the post"
    assert (job["goal_id"], job["parent_id"], job["status"]) == (goal["id"], None, "draft")
    assert (job["price_cents"], job["cost_cents"], job["currency"]) == (1_500, 3_000, "USD")
    assert job["allowed_actions"][:2] == ["make_ready", "start"]
    assert api.get(f"/api/v1/jobs/{job['id']}").get_json() == job

    child = new_job("Child", parent_id=job["id"])
    assert child["parent_id"] == job["id"]

    patched = api.patch(f"/api/v1/jobs/{job['id']}", json={"price_cents": 2_000, "brief": "new"})
    assert patched.status_code == 200
    body = patched.get_json()
    assert (body["price_cents"], body["brief"], body["title"]) == (2_000, "new", "Outline the post")
    assert db.session.get(MicroJob, job["id"]).price_cents == 2_000


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": ["a"]}, "title"),
        ({"title": "x", "price_cents": -100}, "price_cents"),
        ({"title": "x", "price_cents": 9.99}, "price_cents"),
        ({"title": "x", "price_cents": "12.50"}, "price_cents"),
        ({"title": "x", "assignments": 0}, "assignments"),
        ({"title": "x", "estimate_minutes": -1}, "estimate_minutes"),
        ({"title": "x", "due_date": "2026-13-01"}, "due_date"),
        ({"title": "x", "planned_for": 20260101}, "planned_for"),
        ({"title": "x", "mode": "outsource"}, "mode"),
        ({"title": "x", "deliverable_kind": "video"}, "deliverable_kind"),
        ({"title": "x", "acceptance_criteria": "one string"}, "acceptance_criteria"),
        ({"title": "x", "channel_options": [1, 2]}, "channel_options"),
        ({"title": "x", "parent_id": "1"}, "parent_id"),
        ({"title": "x", "parent_id": 999_999}, "parent_id"),
        ({"title": "x", "channel": "fiverr"}, "channel"),
        ({"title": "x", "mode": "delegate"}, "channel"),
        ({"title": "x", "price_cents": 2**31 - 1, "assignments": 2}, "price_cents"),
        ({"title": "x", "status": "done"}, "status"),
    ],
)
def test_job_input_errors_are_422_per_field(api, goal, body, field):
    response = api.post(f"/api/v1/goals/{goal['id']}/jobs", json=body)
    problem = assert_problem(response, 422)
    assert field in problem["errors"]["json"], problem
    assert db.session.scalar(select(db.func.count()).select_from(MicroJob)) == 0


def test_parent_must_be_in_the_same_goal(api, goal, new_job):
    other = api.post("/api/v1/goals", json={"title": "Other goal"}).get_json()
    elsewhere = api.post(f"/api/v1/goals/{other['id']}/jobs", json={"title": "there"}).get_json()
    response = api.post(
        f"/api/v1/goals/{goal['id']}/jobs", json={"title": "x", "parent_id": elsewhere["id"]}
    )
    assert "parent_id" in assert_problem(response, 422)["errors"]["json"]


def test_patch_errors_and_cost_check_against_stored_values(api, new_job):
    job = new_job("Big", price_cents=2**30)
    for body, field in [
        ({"title": None}, "title"),
        ({"assignments": 2}, "price_cents"),  # 2**30 x 2 overflows what the DB holds
        ({"mode": "delegate"}, "channel"),
        ({"channel": "nope"}, "channel"),
        ({"goal_id": 3}, "goal_id"),
    ]:
        problem = assert_problem(api.patch(f"/api/v1/jobs/{job['id']}", json=body), 422)
        assert field in problem["errors"]["json"], (body, problem)


def test_split_makes_children_in_order(api, new_job):
    job = new_job("Guest post")
    response = api.post(
        f"/api/v1/jobs/{job['id']}/split", json={"titles": ["Pitch", " Outline ", "Draft"]}
    )
    assert response.status_code == 201
    children = response.get_json()
    assert [c["title"] for c in children] == ["Pitch", "Outline", "Draft"]
    assert [c["position"] for c in children] == [0, 1, 2]
    assert {c["parent_id"] for c in children} == {job["id"]}
    assert api.get(f"/api/v1/jobs/{job['id']}").get_json()["is_leaf"] is False


@pytest.mark.parametrize(
    "body", [{}, {"titles": []}, {"titles": "Pitch"}, {"titles": [""]}, {"titles": [1, 2]}]
)
def test_split_input_errors(api, new_job, body):
    job = new_job()
    problem = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/split", json=body), 422)
    assert "titles" in problem["errors"]["json"]


def test_split_a_started_job_is_409(api, new_job):
    job = new_job()
    assert api.post(f"/api/v1/jobs/{job['id']}/start").get_json()["status"] == "in_progress"
    problem = assert_problem(
        api.post(f"/api/v1/jobs/{job['id']}/split", json={"titles": ["a"]}), 409
    )
    assert "split" in problem["detail"]


def test_keep_start_complete_reopen_and_illegal_transitions(api, new_job):
    job = new_job()
    assert api.post(f"/api/v1/jobs/{job['id']}/keep").get_json()["mode"] == "keep"
    done = api.post(f"/api/v1/jobs/{job['id']}/complete")
    assert done.status_code == 200
    assert done.get_json()["status"] == "done" and done.get_json()["finished_at"]

    for action in ("complete", "start", "dispatch", "retry"):
        problem = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/{action}"), 409)
        assert "it is done" in problem["detail"]
    assert api.post(f"/api/v1/jobs/{job['id']}/reopen").get_json()["status"] == "ready"
    assert_problem(api.post(f"/api/v1/jobs/{job['id']}/reopen"), 409)
    assert db.session.get(MicroJob, job["id"]).status == "ready"


def test_delegate_then_dispatch_stages_a_dispatch_and_queues_the_job(api, goal, new_job):
    job = _delegated(api, new_job, assignments=2)
    assert (job["mode"], job["channel"], job["channel_options"]) == (
        "delegate", "sandbox", {"level": "pro"}
    )  # fmt: skip

    response = api.post(f"/api/v1/jobs/{job['id']}/dispatch")
    assert response.status_code == 202, response.get_json()
    sent = response.get_json()
    assert (sent["job_id"], sent["adapter"], sent["state"]) == (job["id"], "sandbox", "pending")
    assert (sent["amount_cents"], sent["currency"]) == (5_000, "USD")

    db.session.expire_all()
    row = db.session.scalars(select(Dispatch).where(Dispatch.job_id == job["id"])).one()
    assert row.id == sent["id"] and row.idempotency_key == sent["idempotency_key"]
    assert db.session.get(MicroJob, job["id"]).status == "queued"
    assert db.session.get(Goal, goal["id"]).reserved_cents == 5_000
    queue = get_queue(DISPATCH)
    rq_id = send.send_job_id(row.id)
    assert rq_id in queue.job_ids
    # queued before the request's commit, so marked to wait for its token (first_attempt.py)
    assert Job.fetch(rq_id, connection=redis_connection()).args == (row.id, True)

    shown = api.get(f"/api/v1/goals/{goal['id']}").get_json()
    assert (shown["reserved_cents"], shown["available_cents"]) == (5_000, 5_000)
    kinds = [e["kind"] for e in api.get(f"/api/v1/jobs/{job['id']}/events").get_json()]
    assert kinds == ["job_created", "job_updated", "queue"]

    assert_problem(api.post(f"/api/v1/jobs/{job['id']}/dispatch"), 409)  # already queued
    assert len(queue.job_ids) == 1


def test_dispatch_over_budget_is_409_and_changes_nothing(api, goal, new_job):
    job = _delegated(api, new_job, assignments=5)  # 5 x $25 > $100
    problem = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/dispatch"), 409)
    assert "budget" in problem["detail"]
    db.session.expire_all()
    assert db.session.get(MicroJob, job["id"]).status == "draft"
    assert db.session.get(Goal, goal["id"]).reserved_cents == 0
    assert db.session.scalars(select(Dispatch)).all() == []
    assert get_queue(DISPATCH).count == 0


def test_dispatch_over_an_envelope_is_409_and_changes_nothing(api, goal, new_job):
    """The goal has room, an envelope above the job has not: the goal's reservation, made
    before the envelope refused, must not be committed with whatever the request commits."""
    tight = new_job("Outreach", budget_cents=1_000)
    job = _delegated(api, new_job, parent_id=tight["id"])  # $25 under a $10 envelope
    problem = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/dispatch"), 409)
    assert "envelope" in problem["detail"]
    db.session.expire_all()
    assert db.session.get(MicroJob, job["id"]).status == "draft"
    assert db.session.get(Goal, goal["id"]).reserved_cents == 0
    assert db.session.get(MicroJob, tight["id"]).reserved_cents == 0
    assert db.session.scalars(select(Dispatch)).all() == []
    assert get_queue(DISPATCH).count == 0


def test_dispatch_a_job_not_delegated_is_409(api, new_job):
    job = new_job()
    problem = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/dispatch"), 409)
    assert "delegate" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "connection_id"),
        ({"channel": ""}, "channel"),
        ({"connection_id": 999_999}, "connection_id"),
        ({"channel": "nowhere"}, "channel"),
        ({"channel": "sandbox", "channel_options": "x"}, "channel_options"),
    ],
)
def test_delegate_input_errors(api, new_job, body, field):
    job = new_job()
    problem = assert_problem(api.post(f"/api/v1/jobs/{job['id']}/delegate", json=body), 422)
    assert field in problem["errors"]["json"]
    assert db.session.get(MicroJob, job["id"]).mode == "undecided"


def test_dispatch_goal_sends_every_delegated_leaf(api, goal, new_job):
    first = _delegated(api, new_job)
    second = _delegated(api, new_job)
    kept = new_job("Mine", mode="keep")
    response = api.post(f"/api/v1/goals/{goal['id']}/dispatch")
    assert response.status_code == 202
    assert sorted(d["job_id"] for d in response.get_json()) == [first["id"], second["id"]]
    db.session.expire_all()
    assert db.session.get(MicroJob, kept["id"]).status == "draft"
    assert get_queue(DISPATCH).count == 2
    assert api.post(f"/api/v1/goals/{goal['id']}/dispatch").get_json() == []


def test_cancel_then_retry_sends_again_under_a_new_key(api, goal, new_job):
    job = _delegated(api, new_job)
    first = api.post(f"/api/v1/jobs/{job['id']}/dispatch").get_json()
    cancelled = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["job"]["status"] == "cancelled"
    assert cancelled.get_json()["note"] == ""  # never placed: nothing to cancel at the platform
    db.session.expire_all()
    assert db.session.get(Dispatch, first["id"]).state == "cancelled"
    assert db.session.get(Goal, goal["id"]).reserved_cents == 0

    assert_problem(api.post(f"/api/v1/jobs/{job['id']}/cancel"), 409)
    again = api.post(f"/api/v1/jobs/{job['id']}/retry")
    assert again.status_code == 202
    assert again.get_json()["idempotency_key"] != first["idempotency_key"]
    assert api.get(f"/api/v1/jobs/{job['id']}").get_json()["status"] == "queued"


def test_retry_a_draft_job_is_409(api, new_job):
    job = _delegated(api, new_job)
    assert_problem(api.post(f"/api/v1/jobs/{job['id']}/retry"), 409)


def test_delete_only_while_nothing_started(api, goal, new_job):
    job = new_job()
    assert api.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    assert_problem(api.get(f"/api/v1/jobs/{job['id']}"), 404)
    busy = _delegated(api, new_job)
    api.post(f"/api/v1/jobs/{busy['id']}/dispatch")
    assert_problem(api.delete(f"/api/v1/jobs/{busy['id']}"), 409)


JOB_CALLS = [
    ("get", "/api/v1/jobs/{id}", None),
    ("patch", "/api/v1/jobs/{id}", {"title": "mine"}),
    ("delete", "/api/v1/jobs/{id}", None),
    ("post", "/api/v1/jobs/{id}/split", {"titles": ["a"]}),
    ("post", "/api/v1/jobs/{id}/delegate", {"channel": "sandbox"}),
    ("post", "/api/v1/jobs/{id}/keep", None),
    ("post", "/api/v1/jobs/{id}/start", None),
    ("post", "/api/v1/jobs/{id}/complete", None),
    ("post", "/api/v1/jobs/{id}/reopen", None),
    ("post", "/api/v1/jobs/{id}/dispatch", None),
    ("post", "/api/v1/jobs/{id}/retry", None),
    ("post", "/api/v1/jobs/{id}/cancel", None),
    ("get", "/api/v1/jobs/{id}/events", None),
]


@pytest.mark.parametrize(("method", "url", "body"), JOB_CALLS)
def test_another_owners_job_is_404(api, bob_api, new_job, method, url, body):
    job = _delegated(api, new_job)
    problem = assert_problem(getattr(bob_api, method)(url.format(id=job["id"]), json=body), 404)
    assert "not found" in problem["detail"]
    assert_problem(getattr(api, method)(url.format(id=987_654), json=body), 404)
    db.session.expire_all()
    row = db.session.get(MicroJob, job["id"])
    assert (row.title, row.status, row.mode, row.children) == (
        job["title"],
        "draft",
        "delegate",
        [],
    )


def test_bob_cannot_hang_a_job_under_anns(api, bob_api, new_job):
    anns = new_job()
    bobs_goal = bob_api.post("/api/v1/goals", json={"title": "Bob's"}).get_json()
    response = bob_api.post(
        f"/api/v1/goals/{bobs_goal['id']}/jobs", json={"title": "x", "parent_id": anns["id"]}
    )
    assert "parent_id" in assert_problem(response, 422)["errors"]["json"]
