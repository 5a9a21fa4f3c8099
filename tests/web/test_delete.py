"""Deleting a job deletes its whole subtree, or is refused while any node of it holds money
or owes a platform a call; the page and the API share the one rule (planning.tree), and the
audit trail (Events) outlives the rows it describes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from dispatcher.dispatch import service as dispatch_service
from dispatcher.errors import NotDeletable
from dispatcher.extensions import db
from dispatcher.models import Dispatch, Event, Goal, MicroJob
from dispatcher.planning import tree

from .conftest import page


@pytest.fixture
def family(goal):
    """Parent > (child > grandchild, sibling): four jobs."""
    parent = tree.add_job(goal, title="Week 1")
    child = tree.add_job(goal, title="Pitch", parent=parent)
    grandchild = tree.add_job(goal, title="Email editor", parent=child)
    sibling = tree.add_job(goal, title="Write", parent=parent)
    return parent, child, grandchild, sibling


def job_count(goal) -> int:
    return db.session.scalar(
        select(func.count()).select_from(MicroJob).where(MicroJob.goal_id == goal.id)
    )


def test_deleting_a_parent_deletes_its_whole_subtree(goal, family):
    parent, child, grandchild, sibling = family
    other = tree.add_job(goal, title="Week 2")
    ids = {parent.id, child.id, grandchild.id, sibling.id}
    deleted = tree.delete_job(parent)
    assert set(deleted) == ids
    db.session.expire_all()
    remaining = db.session.scalars(select(MicroJob).where(MicroJob.goal_id == goal.id)).all()
    assert [j.id for j in remaining] == [other.id]  # nothing moved to the top level


def test_events_outlive_the_deleted_jobs(goal, family):
    parent, child, grandchild, _ = family
    before = db.session.scalar(select(func.count()).select_from(Event))
    tree.delete_job(parent)
    db.session.expire_all()
    created = db.session.scalars(select(Event).where(Event.kind == "job_created")).all()
    assert len(created) == 4 and all(e.job_id is None for e in created)
    assert db.session.scalar(select(func.count()).select_from(Event)) == before + 1
    deleted = db.session.scalars(select(Event).where(Event.kind == "job_deleted")).one()
    assert deleted.goal_id == goal.id
    assert sorted(deleted.data["jobs"]) == sorted([parent.id, child.id, grandchild.id, _.id])


def test_events_outlive_a_deleted_goal(goal, family):
    goal_id = goal.id
    db.session.execute(text("DELETE FROM goals WHERE id = :id"), {"id": goal_id})
    db.session.commit()
    events = db.session.scalars(select(Event).where(Event.kind == "job_created")).all()
    assert len(events) == 4
    assert all(e.goal_id is None and e.job_id is None for e in events)
    assert db.session.get(Goal, goal_id) is None
    assert db.session.scalar(select(func.count()).select_from(MicroJob)) == 0  # cascaded


def test_the_database_enforces_foreign_keys(goal):
    db.session.add(MicroJob(owner_id=goal.owner_id, goal_id=987_654, title="orphan"))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_refused_while_a_node_holds_money(goal, family):
    parent, child, grandchild, _ = family
    tree.update_job(grandchild, mode="delegate", channel="sandbox", price_cents=500)
    dispatch_service.dispatch_job(grandchild)  # reserves 5.00 on the grandchild
    with pytest.raises(NotDeletable, match="holds money"):
        tree.delete_job(parent)
    assert job_count(goal) == 4


def test_refused_while_spent_money_sits_on_a_cancelled_node(goal, family):
    parent, child, grandchild, _ = family
    tree.act(grandchild, "cancel")
    grandchild.spent_cents = 300  # paid once, before it was cancelled
    db.session.commit()
    with pytest.raises(NotDeletable, match="holds money"):
        tree.delete_job(parent)
    assert job_count(goal) == 4


def test_refused_while_a_cancel_is_owed_to_the_platform(goal, family):
    parent, child, grandchild, _ = family
    tree.update_job(grandchild, mode="delegate", channel="sandbox", price_cents=500)
    dispatch = dispatch_service.dispatch_job(grandchild)
    dispatch.external_id = "ord-1"  # the order reached the platform
    db.session.commit()
    dispatch_service.cancel_job(grandchild)
    db.session.expire_all()
    dispatch = db.session.get(Dispatch, dispatch.id)
    assert dispatch.state == "cancelled" and dispatch.next_attempt_at is not None
    assert db.session.get(MicroJob, grandchild.id).reserved_cents == 0
    with pytest.raises(NotDeletable, match="owed"):
        tree.delete_job(db.session.get(MicroJob, parent.id))
    assert job_count(goal) == 4
    # once the platform confirmed the cancel, nothing is owed: the subtree goes, and with it
    # the dispatch row; the events stay
    dispatch.next_attempt_at = None
    db.session.commit()
    tree.delete_job(db.session.get(MicroJob, parent.id))
    assert job_count(goal) == 0
    assert db.session.scalar(select(func.count()).select_from(Dispatch)) == 0
    kinds = db.session.scalars(select(Event.kind).where(Event.kind == "cancel")).all()
    assert kinds == ["cancel"]


def test_page_delete_deletes_the_subtree(client, goal, family):
    parent = family[0]
    response = client.post(f"/jobs/{parent.id}/delete")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/goals/{goal.id}")
    assert job_count(goal) == 0
    assert "Deleted “Week 1” and the 3 jobs below it." in page(client.get(f"/goals/{goal.id}"))


def test_page_delete_is_refused_with_the_reason(client, goal, family):
    parent, _, grandchild, _ = family
    tree.update_job(grandchild, mode="delegate", channel="sandbox", price_cents=500)
    dispatch_service.dispatch_job(grandchild)
    response = client.post(f"/jobs/{parent.id}/delete")
    assert response.status_code == 409
    assert "holds money" in page(response)
    assert job_count(goal) == 4


def test_job_page_offers_delete_only_while_deletable(client, make_job):
    job = make_job("Draft me")
    assert 'id="delete-job"' in page(client.get(f"/jobs/{job.id}"))
    tree.update_job(job, mode="keep")
    tree.act(job, "start")
    assert 'id="delete-job"' not in page(client.get(f"/jobs/{job.id}"))


def test_another_owners_job_cannot_be_deleted(bob_client, make_job):
    job = make_job()
    assert bob_client.post(f"/jobs/{job.id}/delete").status_code == 404
    assert db.session.get(MicroJob, job.id) is not None
