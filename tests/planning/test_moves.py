"""Reorder and move jobs, rename them in place: the service, then the endpoints."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatcher.errors import BudgetExceeded, InvalidTransition
from dispatcher.extensions import db
from dispatcher.models import Event, MicroJob
from dispatcher.planning import tree
from dispatcher.planning.moves import move_job, nudge, rename_job
from dispatcher.planning.outline import add_outline


def layout(goal) -> list[tuple[int, str, int]]:
    """(depth, title, position) for every job, in display order."""
    db.session.expire_all()
    return [(n.depth, n.job.title, n.job.position) for n in tree.walk(tree.goal_tree(goal))]


def job_named(title: str) -> MicroJob:
    return db.session.scalars(select(MicroJob).where(MicroJob.title == title)).one()


@pytest.fixture
def plan(goal):
    add_outline(goal, "A\n  a1\n  a2\n  a3\nB\n  b1\nC")
    return goal


def test_reorder_within_a_parent_keeps_positions_dense(plan):
    move_job(job_named("a3"), job_named("A"), 0)
    assert layout(plan)[:4] == [(0, "A", 0), (1, "a3", 0), (1, "a1", 1), (1, "a2", 2)]
    move_job(job_named("a3"), job_named("A"), 99)  # past the end: clamped to last
    assert layout(plan)[1:4] == [(1, "a1", 0), (1, "a2", 1), (1, "a3", 2)]


def test_move_to_another_parent_renumbers_both_sides(plan):
    move_job(job_named("a1"), job_named("B"), 1)
    assert layout(plan) == [
        (0, "A", 0),
        (1, "a2", 0),
        (1, "a3", 1),
        (0, "B", 1),
        (1, "b1", 0),
        (1, "a1", 1),
        (0, "C", 2),
    ]
    event = db.session.scalars(select(Event).where(Event.kind == "job_moved")).one()
    assert event.data["to_parent_id"] == job_named("B").id


def test_move_to_the_top_level_and_back_under_a_leaf(plan):
    move_job(job_named("b1"), None, 0)
    assert [row[1] for row in layout(plan) if row[0] == 0] == ["b1", "A", "B", "C"]
    move_job(job_named("A"), job_named("C"), 0)  # C was a leaf in draft: it becomes a parent
    assert layout(plan)[-5:] == [
        (0, "C", 2),
        (1, "A", 0),
        (2, "a1", 0),
        (2, "a2", 1),
        (2, "a3", 2),
    ]


def test_refuses_a_move_under_itself_or_its_descendants(plan):
    with pytest.raises(ValueError, match="own descendants"):
        move_job(job_named("A"), job_named("a2"), 0)
    with pytest.raises(ValueError, match="own descendants"):
        move_job(job_named("A"), job_named("A"), 0)


def test_refuses_a_move_to_another_goal(plan, owner):
    other = tree.create_goal(owner.id, title="Other goal")
    stranger = tree.add_job(other, title="elsewhere")
    with pytest.raises(ValueError, match="within its own goal"):
        move_job(job_named("a1"), stranger, 0)


def test_refuses_a_leaf_with_work_under_way_as_the_new_parent(plan):
    c = job_named("C")
    tree.update_job(c, mode="keep")
    tree.act(c, "start")
    with pytest.raises(InvalidTransition):
        move_job(job_named("a1"), c, 0)


def test_nudges_up_down_indent_outdent(plan):
    nudge(job_named("a2"), "up")
    assert [r[1] for r in layout(plan)[1:4]] == ["a2", "a1", "a3"]
    nudge(job_named("a2"), "up")  # already first: nothing happens
    nudge(job_named("a2"), "down")
    assert [r[1] for r in layout(plan)[1:4]] == ["a1", "a2", "a3"]
    nudge(job_named("a2"), "indent")  # under a1, the job above it
    assert layout(plan)[1:4] == [(1, "a1", 0), (2, "a2", 0), (1, "a3", 1)]
    nudge(job_named("a2"), "outdent")  # back out, right after a1
    assert layout(plan)[1:4] == [(1, "a1", 0), (1, "a2", 1), (1, "a3", 2)]
    nudge(job_named("a3"), "outdent")  # to the top level, right after A
    assert [r[1] for r in layout(plan) if r[0] == 0] == ["A", "a3", "B", "C"]
    with pytest.raises(ValueError, match="no job above"):
        nudge(job_named("a1"), "indent")
    with pytest.raises(ValueError, match="already at the top level"):
        nudge(job_named("A"), "outdent")


def test_money_follows_a_moved_job_between_envelopes(plan):
    a, b, a1 = job_named("A"), job_named("B"), job_named("a1")
    tree.update_job(b, budget_cents=500)
    for node in (a1, a):
        node.reserved_cents, node.spent_cents = 300, 100
    db.session.commit()
    move_job(a1, b, 0)
    db.session.expire_all()
    assert (job_named("A").reserved_cents, job_named("A").spent_cents) == (0, 0)
    assert (job_named("B").reserved_cents, job_named("B").spent_cents) == (300, 100)
    # B's envelope (500) has 100 left: a1 with 400 more cannot come back in twice
    c1 = tree.add_job(plan, title="c1", parent=job_named("C"))
    c1.reserved_cents = 200
    job_named("C").reserved_cents = 200
    db.session.commit()
    with pytest.raises(BudgetExceeded, match="no room"):
        move_job(job_named("c1"), job_named("B"), 0)
    db.session.expire_all()
    assert job_named("c1").parent_id == job_named("C").id
    assert job_named("B").reserved_cents == 300


def test_rename_in_place(plan):
    job = rename_job(job_named("a1"), "  Pitch   email 1 ")
    assert job.title == "Pitch email 1"
    with pytest.raises(ValueError, match="empty"):
        rename_job(job, "   ")
    with pytest.raises(ValueError, match="at most 300"):
        rename_job(job, "x" * 301)


# --- through the endpoints ---------------------------------------------------------------------


def test_move_endpoint_json_drag_and_drop(ann, plan):
    a1, b = job_named("a1"), job_named("B")
    response = ann.post(
        f"/goals/{plan.id}/jobs/{a1.id}/move", json={"parent_id": b.id, "position": 0}
    )
    assert response.status_code == 200
    assert response.get_json() == {"id": a1.id, "parent_id": b.id, "position": 0}
    response = ann.post(
        f"/goals/{plan.id}/jobs/{a1.id}/move", json={"parent_id": None, "position": 1}
    )
    assert response.get_json() == {"id": a1.id, "parent_id": None, "position": 1}
    assert [r[1] for r in layout(plan) if r[0] == 0] == ["A", "a1", "B", "C"]


def test_move_endpoint_json_keyboard_direction(ann, plan):
    a2 = job_named("a2")
    response = ann.post(f"/goals/{plan.id}/jobs/{a2.id}/move", json={"direction": "indent"})
    assert response.get_json() == {"id": a2.id, "parent_id": job_named("a1").id, "position": 0}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"direction": "sideways"}, 400, "direction: Must be one of"),
        ({}, 400, "position: give a direction"),
        ({"parent_id": "x", "position": 0}, 400, "parent_id: Not a valid integer"),
        ({"position": -1}, 400, "position: Must be greater than or equal to 0"),
        ({"direction": "outdent"}, 400, "already at the top level"),
    ],
)
def test_move_endpoint_rejects_bad_input_with_4xx(ann, plan, body, status, message):
    response = ann.post(f"/goals/{plan.id}/jobs/{job_named('A').id}/move", json=body)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_move_endpoint_refuses_own_descendant_and_unknown_parent(ann, plan):
    a = job_named("A")
    response = ann.post(
        f"/goals/{plan.id}/jobs/{a.id}/move",
        json={"parent_id": job_named("a1").id, "position": 0},
    )
    assert response.status_code == 400
    assert "own descendants" in response.get_json()["error"]
    response = ann.post(
        f"/goals/{plan.id}/jobs/{a.id}/move", json={"parent_id": 999999, "position": 0}
    )
    assert response.status_code == 404


def test_move_buttons_work_without_javascript(ann, plan):
    a3 = job_named("a3")
    response = ann.post(f"/goals/{plan.id}/move", data={"move": f"{a3.id}:up"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/goals/{plan.id}/plan#job-{a3.id}")
    assert [r[1] for r in layout(plan)[1:4]] == ["a1", "a3", "a2"]
    response = ann.post(f"/goals/{plan.id}/move", data={"move": f"{a3.id}:nowhere"})
    assert response.status_code == 302  # refused with a flash message, nothing moved
    page = ann.get(f"/goals/{plan.id}/plan").get_data(as_text=True)
    assert "direction must be one of" in page


def test_breakdown_page_move_form_returns_to_next(ann, plan):
    a2 = job_named("a2")
    next_url = f"/goals/{plan.id}/jobs/{a2.id}/breakdown"
    response = ann.post(
        f"/goals/{plan.id}/jobs/{a2.id}/move", data={"direction": "down", "next": next_url}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == next_url
    assert [r[1] for r in layout(plan)[1:4]] == ["a1", "a3", "a2"]


def test_title_endpoint_json_and_form(ann, plan):
    a1 = job_named("a1")
    response = ann.post(f"/goals/{plan.id}/jobs/{a1.id}/title", json={"title": "First pitch"})
    assert response.get_json() == {"id": a1.id, "title": "First pitch"}
    response = ann.post(f"/goals/{plan.id}/jobs/{a1.id}/title", json={"title": ""})
    assert response.status_code == 400
    assert "title" in response.get_json()["error"]
    response = ann.post(f"/goals/{plan.id}/jobs/{a1.id}/title", data={"title": "Via the form"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(MicroJob, a1.id).title == "Via the form"
    response = ann.post(f"/goals/{plan.id}/jobs/{a1.id}/title", data={"title": " "})
    assert response.status_code == 400
    assert "a title cannot be empty" in response.get_data(as_text=True)


def test_another_owners_jobs_are_not_found(login, other_owner, plan):
    client = login(other_owner)
    a1 = job_named("a1")
    assert (
        client.post(f"/goals/{plan.id}/jobs/{a1.id}/move", json={"direction": "up"}).status_code
        == 404
    )
    assert (
        client.post(f"/goals/{plan.id}/jobs/{a1.id}/title", json={"title": "x"}).status_code == 404
    )
    assert client.get(f"/goals/{plan.id}/plan").status_code == 404


def test_move_form_never_redirects_off_site(ann, plan):
    a2 = job_named("a2")
    response = ann.post(
        f"/goals/{plan.id}/jobs/{a2.id}/move",
        data={"direction": "up", "next": "https://evil.example/phish"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/goals/{plan.id}/plan#job-{a2.id}")
