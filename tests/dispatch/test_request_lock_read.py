"""The job's lock and the request's reads in one statement on PostgreSQL
(request_reads.lock_and_read, issue 12), and why it is guarded.

A statement reads with the snapshot taken when it starts. When it has to wait for the job's
lock, PostgreSQL re-reads the locked row once the holder commits (EvalPlanQual), but the
statement's other reads keep the old snapshot: what the holder committed with the lock (a
place, a change to the goal) would be missed. The guard on the row version makes the folded
statement lock nothing in that case, and the request locks and reads again in two
statements, which see the holder's commit. These tests use two real connections."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from dispatch.helpers import delegated, statements
from dispatcher.dispatch import request_reads, service
from dispatcher.extensions import db
from dispatcher.models import Assignment, Dispatch, MicroJob
from dispatcher.models._base import utcnow


def fresh(job_id: int) -> MicroJob:
    db.session.remove()
    return db.session.get(MicroJob, job_id)


@pytest.fixture
def postgresql(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks and snapshots per statement: PostgreSQL only")


def hold_the_lock_and_add_a_place(job_id: int, connection_id: int) -> Session:
    """Another transaction, as a worker's would: it locks the job (writing its row, as every
    holder does), gives the job a place in flight and changes the goal's currency; not
    committed yet."""
    other = Session(db.engine)
    other.execute(text("UPDATE micro_jobs SET updated_at = now() WHERE id = :id"), {"id": job_id})
    goal_id = other.scalar(text("SELECT goal_id FROM micro_jobs WHERE id = :id"), {"id": job_id})
    other.execute(text("UPDATE goals SET currency = 'EUR' WHERE id = :id"), {"id": goal_id})
    order = Dispatch(job_id=job_id, adapter="sandbox", connection_id=connection_id,
                     idempotency_key="dsp_other", state="placed", amount_cents=600)  # fmt: skip
    order.assignments.append(Assignment(job_id=job_id, position=1, status="open",
                                        price_cents=500, held_cents=600))  # fmt: skip
    other.add(order)
    other.flush()
    return other


def wait_until_blocked(timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with db.engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the dispatch never waited for the job's lock")


def test_a_commit_made_while_the_lock_was_awaited_is_seen(app, goal, postgresql):
    job = delegated(goal, price=500, assignments=2)
    job_id, connection_id = job.id, job.connection_id
    db.session.remove()
    other = hold_the_lock_and_add_a_place(job_id, connection_id)
    seen: list[str] = []
    outcome: dict[str, object] = {}

    def on_statement(conn, cursor, statement, *args) -> None:
        if threading.current_thread().name == "request":
            seen.append(" ".join(statement.split())[:60])

    def request() -> None:
        with app.app_context():
            try:
                dispatch = service.dispatch_job(db.session.get(MicroJob, job_id))
                outcome["id"] = dispatch.id
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = repr(exc)
            finally:
                db.session.remove()

    event.listen(db.engine, "before_cursor_execute", on_statement)
    thread = threading.Thread(target=request, name="request")
    try:
        thread.start()
        wait_until_blocked()
        other.commit()  # the holder commits while the request waits for the lock
        thread.join(timeout=30)
    finally:
        other.close()
        event.remove(db.engine, "before_cursor_execute", on_statement)
    assert "error" not in outcome, outcome
    db.session.expire_all()
    dispatch = db.session.get(Dispatch, outcome["id"])
    # the holder's place is live: the new order covers the one place still missing
    assert [p.position for p in dispatch.assignments] == [1]
    assert dispatch.currency == "EUR"  # the goal as the holder committed it
    # the folded statement was tried, locked nothing, and the two-statement way followed
    folded = [i for i, s in enumerate(seen) if s.startswith("WITH seen AS")]
    locks = [i for i, s in enumerate(seen) if s.startswith("UPDATE micro_jobs SET updated_at")]
    assert len(folded) == 1 and len(locks) == 1 and folded[0] < locks[0], seen


def test_without_a_wait_the_lock_and_the_reads_are_one_statement(goal, postgresql):
    job = delegated(goal, price=500, assignments=2)
    job_id, goal_id = job.id, goal.id
    job = fresh(job_id)
    with statements() as seen:
        reads = request_reads.lock_and_read(job)
    assert len(seen["sql"]) == 1, seen["sql"]
    assert (reads.goal.id, reads.live, reads.connection.id) == (goal_id, 0, job.connection_id)
    assert reads.order_id is not None
    assert job.children == []
    # the row is locked: another transaction's write of it waits
    with db.engine.connect() as other:
        other.execute(text("SET lock_timeout = '200ms'"))
        with pytest.raises(Exception, match="lock timeout"):
            other.execute(text("UPDATE micro_jobs SET title = 'x' WHERE id = :id"), {"id": job_id})
    db.session.rollback()


def test_a_row_changed_after_the_snapshot_locks_nothing(goal, postgresql):
    """The guard itself, with the statement run by hand: the holder's commit while it waits
    makes it return no row and hold no lock."""
    job_id = delegated(goal, price=500).id
    db.session.remove()
    engine = db.engine
    holder = engine.connect()
    holder.begin()
    holder.execute(text("UPDATE micro_jobs SET updated_at = now() WHERE id = :id"), {"id": job_id})
    found: dict[str, object] = {}

    def run() -> None:
        with engine.connect() as conn, conn.begin():
            result = conn.execute(
                request_reads._locked_statement(),
                {"job_id": job_id, "at": utcnow()},
            ).first()
            found["row"] = result

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_until_blocked()
    finally:
        holder.commit()
        holder.close()
    thread.join(timeout=30)
    assert "row" in found and found["row"] is None
