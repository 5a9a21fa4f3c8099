"""dispatch_job's rows written with Core statements (request_writes.py, issue 12): the order it
returns holds what was stored without a reload, the job holds its new status and reservation
with nothing left for a flush, the Event is the one `lifecycle.transition` wrote (and is still
published live), and a refused reservation still leaves no order."""

from __future__ import annotations

import json
import time

import pytest
import redis
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text

from dispatch.helpers import delegated, statements
from dispatcher.dispatch import service
from dispatcher.errors import BudgetExceeded
from dispatcher.extensions import db
from dispatcher.live.publish import channel_for
from dispatcher.locking import lock_job
from dispatcher.models import Assignment, Dispatch, Event, Goal, MicroJob
from dispatcher.planning import tree

COLUMNS = [c.key for c in Dispatch.__table__.columns]


def fresh(job_id: int) -> MicroJob:
    db.session.remove()
    return db.session.get(MicroJob, job_id)


def test_the_returned_order_holds_every_stored_column_without_a_load(goal):
    job = fresh(delegated(goal, price=500, assignments=1).id)
    dispatch = service.dispatch_job(job, actor="api", commit=False)
    assert sa_inspect(dispatch).persistent
    with statements() as seen:
        held = {key: getattr(dispatch, key) for key in COLUMNS}
        db.session.flush()  # nothing of the order or the job is left for the unit of work
    assert seen["sql"] == []
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Dispatch, held["id"])
    assert held == {key: getattr(stored, key) for key in COLUMNS}
    assert held["state"] == "pending" and held["attempts"] == 0 and held["next_attempt_at"] is None
    assert held["currency"] == "USD" and held["created_at"] is not None
    assert held["job_id"] == job.id and held["adapter"] == "sandbox"


def test_a_lone_dispatch_stores_its_first_lease_and_is_enqueued_by_id(goal):
    job_id = delegated(goal, price=500).id
    dispatch = service.dispatch_job(fresh(job_id))
    dispatch_id = sa_inspect(dispatch).identity[0]
    db.session.expire_all()
    stored = db.session.get(Dispatch, dispatch_id)
    assert stored.attempts == 1 and stored.next_attempt_at is not None  # lease_first's fields
    assert dispatch.id == dispatch_id  # read after the commit: loaded again, same row


def test_the_job_holds_its_status_and_reservation_as_written(goal):
    goal_id, job_id = goal.id, delegated(goal, price=400, assignments=2).id
    job = fresh(job_id)
    dispatch = service.dispatch_job(job, commit=False)
    assert not db.session.dirty  # the commit's flush has nothing to do (it cost ~0.5 ms)
    held, amount = (job.status, job.reserved_cents, job.updated_at), dispatch.amount_cents
    assert held[:2] == ("queued", amount) and amount >= 800
    db.session.commit()
    row = db.session.execute(
        text("SELECT status, reserved_cents FROM micro_jobs WHERE id = :id"), {"id": job_id}
    ).one()
    assert tuple(row) == held[:2]
    assert fresh(job_id).updated_at == held[2]
    places = db.session.query(Assignment).filter_by(job_id=job_id).order_by(Assignment.position)
    assert [(p.position, p.status, p.price_cents, p.held_cents, p.worker_ref, p.paid_cents)
            for p in places] == [
        (1, "open", 400, amount // 2, "", 0),
        (2, "open", 400, amount // 2, "", 0),
    ]  # fmt: skip
    assert db.session.get(Goal, goal_id).reserved_cents == amount


def test_a_free_job_is_ordered_with_its_places_and_no_money(goal):
    """Nothing to reserve: the order and its places are still written (on PostgreSQL the
    reservation's statement, which carried them, was skipped for 0 cents: the API's
    free-job test found it)."""
    goal_id, job_id = goal.id, delegated(goal, price=0, free=True, assignments=2).id
    dispatch = service.dispatch_job(fresh(job_id))
    dispatch_id = sa_inspect(dispatch).identity[0]
    db.session.expire_all()
    stored = db.session.get(Dispatch, dispatch_id)
    assert (stored.job_id, stored.amount_cents, stored.state) == (job_id, 0, "pending")
    places = db.session.query(Assignment).filter_by(dispatch_id=dispatch_id)
    assert sorted((p.position, p.held_cents) for p in places) == [(1, 0), (2, 0)]
    assert fresh(job_id).status == "queued" and db.session.get(Goal, goal_id).reserved_cents == 0


def test_the_event_is_the_one_a_transition_writes(goal):
    job_id = delegated(goal, price=500).id
    job = fresh(job_id)
    owner_id, goal_id = job.owner_id, job.goal_id
    dispatch_id = service.dispatch_job(job, actor="owner:7").id
    db.session.expire_all()
    (event,) = db.session.query(Event).filter_by(job_id=job_id, kind="queue").all()
    assert (event.owner_id, event.goal_id, event.actor) == (owner_id, goal_id, "owner:7")
    assert (event.from_status, event.to_status) == ("draft", "queued")
    assert event.data == {"dispatch_id": dispatch_id, "channel": "sandbox", "assignments": 1}
    assert event.created_at is not None


def test_a_requeue_is_recorded_as_one(goal):
    job_id = delegated(goal, price=500).id
    service.dispatch_job(fresh(job_id))
    job = fresh(job_id)
    service.cancel_job(job)
    service.retry_job(fresh(job_id))
    db.session.expire_all()
    kinds = [
        (e.kind, e.from_status, e.to_status)
        for e in db.session.query(Event).filter_by(job_id=job_id).order_by(Event.id)
        if e.kind in ("queue", "requeue", "cancel")
    ]
    assert kinds == [
        ("queue", "draft", "queued"),
        ("cancel", "queued", "cancelled"),
        ("requeue", "cancelled", "queued"),
    ]


def test_the_event_is_published_live_after_commit(goal, redis_url):
    job = fresh(delegated(goal, price=500).id)
    conn = redis.Redis.from_url(redis_url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_for(job.owner_id))
    try:
        job_id = job.id
        service.dispatch_job(job)
        found, deadline = [], time.monotonic() + 2
        while time.monotonic() < deadline and not found:
            message = pubsub.get_message(timeout=0.1)
            if message:
                found.append(json.loads(message["data"]))
    finally:
        pubsub.close()
        conn.close()
    [message] = found
    assert (message["job"], message["kind"], message["from"], message["to"]) == (
        job_id, "queue", "draft", "queued",
    )  # fmt: skip
    assert message["id"] is not None and message["at"]


def test_a_refused_reservation_leaves_no_order_even_when_the_caller_commits(owner):
    goal = tree.create_goal(owner.id, title="tight", budget_cents=300)
    goal_id, job_id = goal.id, delegated(goal, price=500).id
    with pytest.raises(BudgetExceeded):
        service.dispatch_job(fresh(job_id), commit=False)
    db.session.commit()  # what a careless caller might do after the refusal
    db.session.expire_all()
    assert db.session.query(Dispatch).count() == 0
    assert db.session.query(Assignment).count() == 0
    job = db.session.get(MicroJob, job_id)
    assert (job.status, job.reserved_cents) == ("draft", 0)
    assert db.session.get(Goal, goal_id).reserved_cents == 0


def test_lock_job_writes_what_the_job_holds_unwritten_then_reloads_the_rest(goal):
    job = fresh(delegated(goal, price=500).id)
    job.title = "edited, not flushed"
    with db.engine.begin() as other:  # another process's edit of another column
        other.execute(text("UPDATE micro_jobs SET price_cents = 900 WHERE id = :id"),
                      {"id": job.id})  # fmt: skip
    lock_job(job)
    assert (job.title, job.price_cents) == ("edited, not flushed", 900)
    assert not db.session.is_modified(job)
    db.session.commit()
    stored = fresh(job.id)
    assert (stored.title, stored.price_cents) == ("edited, not flushed", 900)


def test_a_lone_dispatch_publishes_its_event_in_the_hand_overs_round_trip(
    goal, redis_url, monkeypatch
):
    """After the commit one Redis round trip carries the token, the send task and the live
    update (issue 12: the publish was a round trip of its own); the update still arrives."""
    import redis.connection
    from sqlalchemy import event

    job = fresh(delegated(goal, price=500).id)
    job_id, owner_id = job.id, job.owner_id
    sent: list[str] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(conn, command, *args, **kwargs):
        sent.append("after commit" if committed else "before")
        return original(conn, command, *args, **kwargs)

    committed = False

    def on_commit(conn) -> None:
        nonlocal committed
        committed = True

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    conn = redis.Redis.from_url(redis_url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_for(owner_id))
    pubsub.get_message(timeout=0.1)
    sent.clear()
    event.listen(db.engine, "commit", on_commit)
    try:
        service.dispatch_job(job)
    finally:
        event.remove(db.engine, "commit", on_commit)
    after = sent.count("after commit")
    try:
        message = pubsub.get_message(timeout=2)
        while message is None or message["type"] != "message":
            message = pubsub.get_message(timeout=2)
    finally:
        pubsub.close()
        conn.close()
    assert after == 1
    found = json.loads(message["data"])
    assert (found["job"], found["kind"], found["to"]) == (job_id, "queue", "queued")
    assert not any(key.startswith("dispatcher.live") for key in db.session().info)


def test_a_dispatch_whose_commit_fails_publishes_nothing_and_holds_nothing(
    goal, redis_url, monkeypatch
):
    """The hold ends with the commit: a failed commit's Event is never published, and the
    session's next commit publishes on its own again. (On PostgreSQL the COMMIT rides the
    request's one statement, request_folds.scalar_and_commit: that is where it fails.)"""
    from sqlalchemy import event

    from dispatcher.dispatch import request_folds

    job = fresh(delegated(goal, price=500).id)
    owner_id = job.owner_id

    def refuse(*args, **kwargs) -> None:
        raise RuntimeError("the commit fails")

    monkeypatch.setattr(request_folds, "scalar_and_commit", refuse)

    conn = redis.Redis.from_url(redis_url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel_for(owner_id))
    event.listen(db.session(), "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError):
            service.dispatch_job(job)
    finally:
        event.remove(db.session(), "before_commit", refuse)
    db.session.rollback()
    try:
        seen = [pubsub.get_message(timeout=0.3) for _ in range(3)]
    finally:
        pubsub.close()
        conn.close()
    assert [m for m in seen if m and m["type"] == "message"] == []
    assert not any(key.startswith("dispatcher.live") for key in db.session().info)
    assert db.session.query(Dispatch).count() == 0


def test_a_goal_without_room_writes_nothing_and_the_job_keeps_its_status(owner):
    """On PostgreSQL the reservation conditions every write of the one statement: no order,
    no place, no move, no Event; the job object still says draft (it was moved in memory
    for the statement's values, then put back)."""
    goal = tree.create_goal(owner.id, title="tight", budget_cents=300)
    goal_id = goal.id
    job = fresh(delegated(goal, price=500).id)
    job_id = job.id
    with pytest.raises(BudgetExceeded, match="goal budget left is"):
        service.dispatch_job(job, commit=False)
    assert job.status == "draft" and job.reserved_cents == 0
    db.session.commit()
    db.session.expire_all()
    assert db.session.query(Dispatch).count() == 0
    assert db.session.query(Assignment).count() == 0
    assert db.session.query(Event).filter_by(job_id=job_id, kind="queue").count() == 0
    stored = db.session.get(MicroJob, job_id)
    assert (stored.status, stored.reserved_cents) == ("draft", 0)
    assert db.session.get(Goal, goal_id).reserved_cents == 0
    # the same job dispatches once the goal has room (a refused id is only a gap)
    db.session.get(Goal, goal_id).budget_cents = 5000
    db.session.commit()
    dispatch_id = service.dispatch_job(fresh(job_id)).id
    db.session.expire_all()
    assert db.session.get(Dispatch, dispatch_id).job_id == job_id
    (event,) = db.session.query(Event).filter_by(job_id=job_id, kind="queue").all()
    assert event.data["dispatch_id"] == dispatch_id


def test_an_ancestor_without_envelope_still_holds_the_money(goal):
    """Ancestors keep their subtree's reservation: with the job's writes folded into one
    statement (no envelope above it), the parent's UPDATE still follows in the transaction."""
    goal_id = goal.id
    parent = tree.add_job(goal, title="parent")
    job = delegated(goal, title="leaf", price=500, parent=parent, assignments=2)
    parent_id, job_id = parent.id, job.id
    dispatch_id = service.dispatch_job(fresh(job_id)).id
    db.session.expire_all()
    amount = db.session.get(Dispatch, dispatch_id).amount_cents
    assert amount >= 1000
    assert db.session.get(MicroJob, parent_id).reserved_cents == amount
    assert db.session.get(MicroJob, job_id).reserved_cents == amount
    assert db.session.get(Goal, goal_id).reserved_cents == amount
    assert db.session.query(Assignment).filter_by(dispatch_id=dispatch_id).count() == 2
    (event,) = db.session.query(Event).filter_by(job_id=job_id, kind="queue").all()
    assert event.data == {"dispatch_id": dispatch_id, "channel": "sandbox", "assignments": 2}
