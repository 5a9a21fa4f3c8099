"""Issue 12: the batch claim (send_batch.claim) takes the asked-for dispatch first and its
channel's other due ones in id order, nothing unless the asked-for one is due; on
PostgreSQL its plan reads only the batch whatever the statistics say, and two claims at
once take disjoint rows without waiting for each other."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, insert, select, text

from dispatch.helpers import delegated
from dispatcher.dispatch import send_batch
from dispatcher.extensions import db
from dispatcher.models import Connection, Dispatch
from dispatcher.models._base import utcnow

SIZE = 16


def channel_id(owner) -> int:
    return db.session.scalar(select(Connection.id).where(Connection.owner_id == owner.id))


def add_rows(job_id: int, n: int, connection_id: int | None, **fields) -> list[int]:
    """`n` dispatches of one job (the claim looks at dispatches only): their ids."""
    start = db.session.scalar(select(func.count()).select_from(Dispatch))
    values = {"state": "pending", "attempts": 0, "adapter": "sandbox", **fields}
    rows = [{"job_id": job_id, "connection_id": connection_id,
             "idempotency_key": f"claim-{start + i}", **values} for i in range(n)]  # fmt: skip
    ids = db.session.scalars(insert(Dispatch).returning(Dispatch.id), rows).all()
    db.session.commit()
    return sorted(ids)


@pytest.fixture
def job(goal):
    return delegated(goal, title="one job", price=500)


def attempts(ids: list[int]) -> list[int]:
    db.session.expire_all()
    return [db.session.get(Dispatch, i).attempts for i in ids]


def test_the_asked_for_row_comes_first_then_the_rest_in_id_order(owner, job):
    ids = add_rows(job.id, 6, channel_id(owner))
    before = utcnow()
    claimed = send_batch.claim(ids[3], 4)
    assert [d.id for d in claimed] == [ids[3], ids[0], ids[1], ids[2]]
    db.session.commit()
    assert attempts(ids) == [1, 1, 1, 1, 0, 0]
    for dispatch_id in ids[:4]:
        assert db.session.get(Dispatch, dispatch_id).next_attempt_at > before  # leased
    assert db.session.get(Dispatch, ids[4]).next_attempt_at is None


def test_rows_leased_or_no_longer_pending_are_passed_over(owner, job):
    ids = add_rows(job.id, 5, channel_id(owner))
    db.session.get(Dispatch, ids[1]).next_attempt_at = utcnow() + timedelta(minutes=1)
    db.session.get(Dispatch, ids[2]).state = "placed"
    db.session.commit()
    assert [d.id for d in send_batch.claim(ids[0], 3)] == [ids[0], ids[3], ids[4]]


@pytest.mark.parametrize("why", ["leased", "placed", "backing off"])
def test_nothing_is_taken_unless_the_asked_for_row_is_due(owner, job, why):
    ids = add_rows(job.id, 4, channel_id(owner))
    mine = db.session.get(Dispatch, ids[0])
    if why == "placed":
        mine.state = "placed"
    else:
        mine.next_attempt_at = utcnow() + timedelta(seconds=30)
    db.session.commit()
    assert send_batch.claim(ids[0], SIZE) == []
    db.session.commit()
    assert attempts(ids) == [0, 0, 0, 0]
    # beside: the asked-for row only names the channel
    claimed = send_batch.claim(ids[0], SIZE, beside=True)
    assert [d.id for d in claimed] == ids[1:]
    db.session.commit()
    assert attempts(ids) == [0, 1, 1, 1]


def test_a_dispatch_without_a_connection_is_a_channel_of_its_own(owner, job):
    connected = add_rows(job.id, 2, channel_id(owner))
    bare = add_rows(job.id, 3, None)  # made before connections: the bare adapter
    other_adapter = add_rows(job.id, 1, None, adapter="manual")
    assert [d.id for d in send_batch.claim(bare[1], SIZE)] == [bare[1], bare[0], bare[2]]
    assert [d.id for d in send_batch.claim(connected[1], SIZE)] == [connected[1], connected[0]]
    db.session.commit()
    assert attempts(other_adapter) == [0]


def postgres_only() -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner, row locks and SKIP LOCKED")


def claim_plan(dispatch_id: int) -> dict:
    """EXPLAIN ANALYZE (JSON) of the claim's UPDATE, run on its own connection just before
    the statement (rolled back after)."""
    seen = {}

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE") and "plan" not in seen:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters)
            seen["plan"] = cursor.fetchone()[0][0]["Plan"]

    event.listen(db.engine, "before_cursor_execute", explain)
    try:
        send_batch.claim(dispatch_id, SIZE)
    finally:
        event.remove(db.engine, "before_cursor_execute", explain)
        db.session.rollback()
    return seen["plan"]


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def test_the_claims_plan_reads_only_the_batch_whatever_the_statistics(owner, job):
    """With statistics taken when nothing was pending (what a previous drain leaves), the
    old claim re-ran its choice of rows once per pending row; with fresh ones it read every
    pending row, or every placed row before them. Now each scan reads about the batch, once."""
    postgres_only()
    connection = channel_id(owner)
    db.session.execute(text("ALTER TABLE dispatches SET (autovacuum_enabled = false)"))
    db.session.commit()
    try:
        add_rows(job.id, 400, connection, state="placed", attempts=1)
        db.session.execute(text("ANALYZE dispatches"))
        db.session.commit()
        pending = add_rows(job.id, 300, connection)
        for stats in ("stale", "fresh"):
            if stats == "fresh":
                db.session.execute(text("ANALYZE dispatches"))
                db.session.commit()
            plan = claim_plan(pending[100])
            assert plan["Actual Rows"] == SIZE, stats
            for node in nodes(plan):
                assert node["Actual Loops"] <= 1, (stats, node["Node Type"])
                read = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                if node.get("Relation Name") == "dispatches":
                    assert read <= SIZE + 1, (stats, node["Node Type"], node.get("Index Name"))
    finally:
        db.session.rollback()
        db.session.execute(text("ALTER TABLE dispatches RESET (autovacuum_enabled)"))
        db.session.commit()


def test_two_claims_at_once_take_disjoint_rows_without_waiting(app, owner, job):
    """Two workers' claims, each on its own connection and thread: the second runs while
    the first's transaction still holds its rows, and takes others instead of waiting for
    them (and then finding them taken)."""
    postgres_only()
    ids = add_rows(job.id, 40, channel_id(owner))
    first_holds, second_done = threading.Event(), threading.Event()
    taken: dict[str, object] = {}

    def first() -> None:
        with app.app_context():
            taken["first"] = [d.id for d in send_batch.claim(ids[0], SIZE)]
            first_holds.set()
            taken["second ran meanwhile"] = second_done.wait(timeout=5)
            db.session.commit()

    def second() -> None:
        with app.app_context():
            first_holds.wait(timeout=10)
            taken["second"] = [d.id for d in send_batch.claim(ids[20], SIZE)]
            second_done.set()
            db.session.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert taken["second ran meanwhile"] is True  # no wait on the first's row locks
    assert taken["first"] == ids[:SIZE]
    assert taken["second"] == [ids[20], *ids[16:20], *ids[21:32]]
    assert attempts(ids) == [1] * 32 + [0] * 8  # each claimed once
