"""Goals over the API: CRUD, progress and money, the tree, input errors, owner scoping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Event, Goal

from .helpers import assert_problem


def test_create_get_list_update_goal(api, ann):
    made = api.post(
        "/api/v1/goals",
        json={
            "title": "  10k visits a month  ",
            "why": "ads pay per visit",
            "metric_name": "visits",
            "baseline": 1200,
            "target": 10_000,
            "deadline": "2026-06-30",
            "currency": "eur",
            "budget_cents": 50_000,
        },
    )
    assert made.status_code == 201
    goal = made.get_json()
    assert made.headers["Location"].endswith(f"/api/v1/goals/{goal['id']}")
    assert goal["title"] == "10k visits a month"
    assert goal["currency"] == "EUR"
    assert goal["deadline"] == "2026-06-30"
    assert (goal["budget_cents"], goal["reserved_cents"], goal["spent_cents"]) == (50_000, 0, 0)
    assert goal["available_cents"] == 50_000
    assert goal["progress"] == {
        "done": 0, "total": 0, "percent": 0, "minutes_done": 0, "minutes_total": 0,
        "percent_by_estimate": 0, "reserved_cents": 0, "spent_cents": 0,
    }  # fmt: skip
    row = db.session.get(Goal, goal["id"])
    assert row.owner_id == ann.id and row.target == 10_000

    assert api.get(f"/api/v1/goals/{goal['id']}").get_json() == goal
    assert [g["id"] for g in api.get("/api/v1/goals").get_json()] == [goal["id"]]

    changed = api.patch(
        f"/api/v1/goals/{goal['id']}", json={"title": "12k visits", "deadline": None}
    )
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["title"], body["deadline"], body["budget_cents"]) == ("12k visits", None, 50_000)
    kinds = db.session.scalars(select(Event.kind).where(Event.goal_id == goal["id"])).all()
    assert kinds == ["goal_created", "goal_updated"]
    assert api.patch(f"/api/v1/goals/{goal['id']}", json={}).status_code == 422  # names nothing


def test_progress_counts_leaves(api, goal, new_job):
    parent = new_job("Guest post #1")
    pitch, draft = api.post(
        f"/api/v1/jobs/{parent['id']}/split", json={"titles": ["Pitch", "Draft"]}
    ).get_json()
    assert api.post(f"/api/v1/jobs/{pitch['id']}/complete").status_code == 200
    progress = api.get(f"/api/v1/goals/{goal['id']}").get_json()["progress"]
    assert (progress["done"], progress["total"], progress["percent"]) == (1, 2, 50)


def test_tree_nests_jobs_with_derived_status(api, goal, new_job):
    parent = new_job("Guest post #1", estimate_minutes=0)
    a, b = api.post(f"/api/v1/jobs/{parent['id']}/split", json={"titles": ["a", "b"]}).get_json()
    api.post(f"/api/v1/jobs/{a['id']}/split", json={"titles": ["a1", "a2"]})
    loose = new_job("Loose end")
    api.post(f"/api/v1/jobs/{b['id']}/complete")

    tree = api.get(f"/api/v1/goals/{goal['id']}/tree").get_json()
    assert tree["goal_id"] == goal["id"]
    assert (tree["progress"]["done"], tree["progress"]["total"]) == (1, 4)
    top = tree["jobs"]
    assert [n["title"] for n in top] == ["Guest post #1", "Loose end"]
    root = top[0]
    assert root["status"] == "in_progress" and root["is_leaf"] is False and root["depth"] == 0
    assert [c["title"] for c in root["children"]] == ["a", "b"]
    node_a = root["children"][0]
    assert [c["title"] for c in node_a["children"]] == ["a1", "a2"]
    assert node_a["children"][0]["depth"] == 2 and node_a["children"][0]["children"] == []
    assert node_a["status"] == "draft"
    assert (root["progress"]["done"], root["progress"]["total"]) == (1, 3)
    assert top[1]["id"] == loose["id"] and top[1]["is_leaf"] is True

    # The job itself shows the derived status too, and no actions of its own.
    shown = api.get(f"/api/v1/jobs/{parent['id']}").get_json()
    assert shown["status"] == "in_progress" and shown["allowed_actions"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": None}, "title"),
        ({"title": 42}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "ok", "budget_cents": -1}, "budget_cents"),
        ({"title": "ok", "budget_cents": 12.5}, "budget_cents"),
        ({"title": "ok", "budget_cents": "100"}, "budget_cents"),
        ({"title": "ok", "budget_cents": True}, "budget_cents"),
        ({"title": "ok", "budget_cents": 10**20}, "budget_cents"),
        ({"title": "ok", "deadline": "2026-02-30"}, "deadline"),
        ({"title": "ok", "deadline": "next friday"}, "deadline"),
        ({"title": "ok", "currency": "dollars"}, "currency"),
        ({"title": "ok", "target": "lots"}, "target"),
        ({"title": "ok", "personal": "maybe"}, "personal"),
        ({"title": "ok", "reserved_cents": 5}, "reserved_cents"),
        ({"title": "ok", "owner_id": 2}, "owner_id"),
        ({"title": "with \x00 nul"}, "title"),
    ],
)
def test_goal_input_errors_are_422_per_field(api, body, field):
    problem = assert_problem(api.post("/api/v1/goals", json=body), 422)
    assert list(problem["errors"]["json"]) == [field]
    assert all(isinstance(m, str) for m in problem["errors"]["json"][field])
    assert db.session.scalar(select(db.func.count()).select_from(Goal)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"title": ""}, "title"),
        ({"budget_cents": None}, "budget_cents"),
        ({"budget_cents": -5}, "budget_cents"),
        ({"deadline": "31/12/2026"}, "deadline"),
        ({"spent_cents": 0}, "spent_cents"),
    ],
)
def test_goal_patch_errors_are_422_per_field(api, goal, body, field):
    problem = assert_problem(api.patch(f"/api/v1/goals/{goal['id']}", json=body), 422)
    assert field in problem["errors"]["json"]
    assert api.get(f"/api/v1/goals/{goal['id']}").get_json() == goal


def test_body_that_is_not_an_object_or_not_json(api):
    problem = assert_problem(api.post("/api/v1/goals", json=["a", "list"]), 422)
    assert problem["errors"]["json"]
    broken = api.post(
        "/api/v1/goals", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_problem(broken, 400)
    assert_problem(api.post("/api/v1/goals", data="title=x"), 422)  # a form is not JSON


def test_another_owners_goal_is_404(api, bob_api, goal):
    gid = goal["id"]
    for method, url, body in [
        ("get", f"/api/v1/goals/{gid}", None),
        ("patch", f"/api/v1/goals/{gid}", {"title": "mine now"}),
        ("get", f"/api/v1/goals/{gid}/tree", None),
        ("post", f"/api/v1/goals/{gid}/dispatch", None),
        ("post", f"/api/v1/goals/{gid}/jobs", {"title": "sneak in"}),
    ]:
        assert_problem(getattr(bob_api, method)(url, json=body), 404)
    assert bob_api.get("/api/v1/goals").get_json() == []
    assert_problem(api.get("/api/v1/goals/999999"), 404)
    assert api.get(f"/api/v1/goals/{gid}").get_json()["title"] == "52 guest posts"
