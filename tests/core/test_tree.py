"""Goal trees through the service layer: positions, splits, derived status, progress."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Event
from dispatcher.planning import tree


def test_split_adds_children_in_order_and_records_events(goal):
    root = tree.add_job(goal, title="Guest post #1")
    children = tree.split_job(root, ["Pitch", "  ", "Outline", "Draft"])
    assert [c.title for c in children] == ["Pitch", "Outline", "Draft"]
    assert [c.position for c in children] == [0, 1, 2]
    assert all(c.parent_id == root.id for c in children)
    kinds = db.session.scalars(select(Event.kind).where(Event.goal_id == goal.id)).all()
    assert kinds.count("job_created") == 4
    assert "job_split" in kinds


def test_split_refuses_empty_and_started_jobs(goal):
    job = tree.add_job(goal, title="x", mode="keep")
    with pytest.raises(ValueError):
        tree.split_job(job, ["", "  "])
    tree.act(job, "start")
    with pytest.raises(InvalidTransition):
        tree.split_job(job, ["a"])


def test_parent_status_and_progress_derive_from_leaves(goal):
    root = tree.add_job(goal, title="root")
    a, b = tree.split_job(root, ["a", "b"])
    tree.update_job(a, estimate_minutes=30)
    tree.update_job(b, estimate_minutes=10)
    tree.act(a, "complete")
    nodes = tree.goal_tree(goal)
    assert len(nodes) == 1
    parent = nodes[0]
    assert parent.status == Status.IN_PROGRESS
    assert (parent.progress.done, parent.progress.total) == (1, 2)
    assert parent.progress.percent_by_estimate == 75
    progress = tree.goal_progress(goal)
    assert (progress.done, progress.total, progress.percent) == (1, 2, 50)
    tree.act(b, "complete")
    assert tree.goal_tree(goal)[0].status == Status.DONE
    assert tree.goal_progress(goal).percent == 100


def test_cancelled_leaves_do_not_count(goal):
    a = tree.add_job(goal, title="a")
    b = tree.add_job(goal, title="b")
    tree.act(a, "complete")
    tree.act(b, "cancel")
    progress = tree.goal_progress(goal)
    assert (progress.done, progress.total) == (1, 1)


def test_unknown_fields_and_modes_are_refused(goal):
    with pytest.raises(TypeError):
        tree.add_job(goal, title="x", colour="red")
    job = tree.add_job(goal, title="x")
    with pytest.raises(ValueError):
        tree.set_mode(job, "outsource")
    with pytest.raises(ValueError):
        tree.set_mode(job, "delegate")  # no channel


def test_delete_refuses_jobs_under_way(goal):
    job = tree.add_job(goal, title="x", mode="keep")
    tree.act(job, "start")
    with pytest.raises(InvalidTransition):
        tree.delete_job(job)
    draft = tree.add_job(goal, title="y")
    tree.delete_job(draft)
    assert db.session.get(type(draft), draft.id) is None
