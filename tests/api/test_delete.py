"""DELETE /api/v1/jobs/<id>: the whole subtree, or 409 while any node holds money."""

from __future__ import annotations

from sqlalchemy import func, select

from dispatcher.extensions import db
from dispatcher.models import MicroJob

from .helpers import assert_problem


def count_jobs() -> int:
    return db.session.scalar(select(func.count()).select_from(MicroJob))


def test_delete_a_parent_deletes_its_subtree(api, goal, new_job):
    parent = new_job("Week 1")
    child = api.post(
        f"/api/v1/goals/{goal['id']}/jobs", json={"title": "Pitch", "parent_id": parent["id"]}
    ).get_json()
    api.post(f"/api/v1/goals/{goal['id']}/jobs", json={"title": "Mail", "parent_id": child["id"]})
    keep = new_job("Week 2")
    assert count_jobs() == 4
    assert api.delete(f"/api/v1/jobs/{parent['id']}").status_code == 204
    assert count_jobs() == 1
    assert_problem(api.get(f"/api/v1/jobs/{child['id']}"), 404)
    assert api.get(f"/api/v1/jobs/{keep['id']}").status_code == 200


def test_delete_is_refused_while_a_child_holds_money(api, goal, new_job):
    parent = new_job("Week 1")
    child = api.post(
        f"/api/v1/goals/{goal['id']}/jobs",
        json={"title": "Pitch", "parent_id": parent["id"], "price_cents": 700},
    ).get_json()
    api.post(f"/api/v1/jobs/{child['id']}/delegate", json={"channel": "sandbox"})
    assert api.post(f"/api/v1/jobs/{child['id']}/dispatch").status_code == 202
    problem = assert_problem(api.delete(f"/api/v1/jobs/{parent['id']}"), 409)
    assert "“Pitch” holds money" in problem["detail"]
    assert count_jobs() == 2
