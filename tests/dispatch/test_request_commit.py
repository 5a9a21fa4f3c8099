"""A lone dispatch's COMMIT rides its one statement's round trip on PostgreSQL
(request_folds.scalar_and_commit, issue 12: idle latency), and its task, queued just
before that statement, is either handed its token or woken when the request refuses."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import event, select, text

from dispatch.helpers import delegated, note_early_tasks
from dispatcher.dispatch import first_attempt, send, service
from dispatcher.errors import BudgetExceeded
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, Goal, MicroJob
from dispatcher.planning import tree
from dispatcher.queues import DISPATCH, get_queue, redis_connection


@pytest.fixture
def postgresql(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("one statement and its COMMIT in one round trip: PostgreSQL only")


def test_the_dispatch_is_committed_with_its_statement(postgresql, goal, paused):
    """When the session's commit starts, the order is already visible to another connection
    and the request's connection is out of its transaction, so that commit sends nothing.
    It fails if the COMMIT is a round trip of its own after the statement."""
    job = delegated(goal)
    seen: list[tuple] = []

    def at_commit(session) -> None:
        raw = session.connection().connection.driver_connection
        with db.engine.connect() as other:
            orders = other.scalar(
                text("SELECT count(*) FROM dispatches WHERE job_id = :id"), {"id": job.id}
            )
        seen.append((orders, raw.info.transaction_status.name))

    event.listen(db.session(), "before_commit", at_commit)
    try:
        dispatch_id = service.dispatch_job(job).id
    finally:
        event.remove(db.session(), "before_commit", at_commit)
    assert seen == [(1, "IDLE")]
    db.session.expire_all()
    assert db.session.get(Dispatch, dispatch_id).state == "pending"
    assert db.session.get(MicroJob, job.id).status == Status.QUEUED
    assert first_attempt.take(dispatch_id) is not None  # the hand-over came after


def test_a_refusal_after_the_task_was_queued_takes_it_back_and_writes_nothing(
    postgresql, owner, paused, monkeypatch
):
    """The goal has no room: the statement writes nothing and the request refuses. The task
    queued just before the statement is taken out of the queue, and a run of it a worker had
    already taken is woken at once, finds no order and ends. It fails if the task is left
    queued, or left to wait its while, or if a refused request leaves an order or money
    reserved."""
    goal = tree.create_goal(owner.id, title="small", budget_cents=500)
    job = delegated(goal, price=1000)
    queued = note_early_tasks(monkeypatch)
    with pytest.raises(BudgetExceeded):
        service.dispatch_job(job)
    db.session.rollback()
    (order_id,) = queued
    assert get_queue(DISPATCH).count == 0
    assert db.session.scalars(select(Dispatch).where(Dispatch.job_id == job.id)).all() == []
    assert db.session.get(Goal, goal.id).reserved_cents == 0
    assert db.session.get(MicroJob, job.id).status != Status.QUEUED
    started = time.monotonic()  # a worker that took the task before the refusal
    assert send.send_dispatch(order_id, True) == "gone"
    assert time.monotonic() - started < first_attempt.WAIT_SECONDS / 2, "woken, not timed out"
    assert not redis_connection().exists(first_attempt.token_key(order_id))
    assert paused.stats()["orders"] == 0


def test_with_unflushed_changes_the_statement_commits_with_the_session(
    postgresql, goal, paused, monkeypatch
):
    """Something in the session changed after the request's flush and just before its
    statement (here: while its task is queued): the statement runs alone and the session's
    commit flushes that change and commits both together. It fails if the COMMIT rides the
    statement anyway (the change would then land in a transaction of its own)."""
    job = delegated(goal)
    other = delegated(goal, title="other")
    queue_early = first_attempt.queue_early

    def queue_and_change(order_id: int):
        other.title = "renamed with the dispatch"  # dirty, not flushed
        return queue_early(order_id)

    monkeypatch.setattr(first_attempt, "queue_early", queue_and_change)
    statuses: list[str] = []

    def at_commit(session) -> None:
        raw = session.connection().connection.driver_connection
        statuses.append(raw.info.transaction_status.name)

    event.listen(db.session(), "before_commit", at_commit)
    try:
        service.dispatch_job(job)
    finally:
        event.remove(db.session(), "before_commit", at_commit)
    assert statuses == ["INTRANS"]
    db.session.expire_all()
    assert db.session.get(MicroJob, other.id).title == "renamed with the dispatch"
    assert db.session.get(MicroJob, job.id).status == Status.QUEUED


def test_the_task_is_sent_before_the_statement_and_its_answer_read_after(
    postgresql, goal, paused, monkeypatch
):
    """The early task's Redis round trip is in flight while the statement runs: sent before
    the statement starts, its answer read after the statement (and its COMMIT) came back.
    It fails if the two round trips run one after the other."""
    from dispatcher import queues

    order: list[str] = []
    in_flight = queues._in_flight

    def recording(conn, *command):
        reply = in_flight(conn, *command)
        order.append("redis sent")

        def answered():
            order.append("redis answered")
            return reply()

        return answered

    def statement(*args) -> None:
        if args[2].lstrip().startswith("WITH g AS"):  # the request's write
            order.append("statement" if not order or order[-1] != "statement" else "done")

    monkeypatch.setattr(queues, "_in_flight", recording)
    job = delegated(goal)
    event.listen(db.engine, "before_cursor_execute", statement)
    event.listen(db.engine, "after_cursor_execute", statement)
    try:
        dispatch_id = service.dispatch_job(job).id
    finally:
        event.remove(db.engine, "before_cursor_execute", statement)
        event.remove(db.engine, "after_cursor_execute", statement)
    assert order == ["redis sent", "statement", "done", "redis answered"]
    assert get_queue(DISPATCH).job_ids == [send.send_job_id(dispatch_id)]
    assert first_attempt.take(dispatch_id) is not None
