"""The idle dispatch path with fewer statements (issue 12, latency): what each cut statement
did is still done, and the statement budgets are stated here."""

from __future__ import annotations

from rq.job import Job
from sqlalchemy import text, update

from dispatch.helpers import delegated, statements
from dispatch.helpers import staged as stage
from dispatcher.dispatch import send, send_batch, service
from dispatcher.extensions import db
from dispatcher.models import Connection, Dispatch, Event, Goal, MicroJob
from dispatcher.queues import DISPATCH, get_queue

#: dispatch_job's statements up to its commit, enqueue included (it was 13, then 11): the
#: lock; one read of the goal, the connection, whether the job has children and its live
#: places; the Dispatch; the goal's guarded reservation; the Event; the job's status with its
#: own reservation (one UPDATE); the places.
DISPATCH_JOB_STATEMENTS = 7
#: on PostgreSQL (it was 4): the lock with the read, which also takes the order's id from
#: its sequence (request_reads.lock_and_read; two statements after a wait for the lock);
#: the goal's reservation, the Dispatch, the places, the job's status with its reservation
#: and the Event (request_folds.dispatch_all; no envelope above the job)
DISPATCH_JOB_STATEMENTS_POSTGRESQL = 2


def fresh_job(job_id: int) -> MicroJob:
    db.session.remove()
    return db.session.get(MicroJob, job_id)


def test_dispatch_job_stays_within_its_statements_and_still_writes_everything(goal):
    goal_id, job_id = goal.id, delegated(goal, price=500).id
    job = fresh_job(job_id)
    version = job.version
    with statements() as seen:
        dispatch = service.dispatch_job(job)
    dispatch_id = dispatch.id  # after the count: the caller's own reload is not counted
    budget = (
        DISPATCH_JOB_STATEMENTS_POSTGRESQL
        if db.engine.dialect.name == "postgresql"
        else DISPATCH_JOB_STATEMENTS
    )
    assert len(seen["sql"]) <= budget, "\n".join(s[:90] for s in seen["sql"])
    # nothing between the commit and the enqueue: the id comes from the row's identity
    assert seen["commits"] == [len(seen["sql"])]
    db.session.expire_all()
    dispatch = db.session.get(Dispatch, dispatch_id)
    assert dispatch.state == "pending" and dispatch.job_version == version
    assert [p.position for p in dispatch.assignments] == [1]
    held = sum(p.held_cents for p in dispatch.assignments)
    assert held >= 500 and dispatch.amount_cents == held
    assert db.session.get(Goal, goal_id).reserved_cents == held  # the money is reserved
    assert db.session.get(MicroJob, job_id).reserved_cents == held
    assert db.session.get(MicroJob, job_id).status == "queued"
    queued = [
        e
        for e in db.session.query(Event).filter_by(job_id=job_id)
        if (e.data or {}).get("dispatch_id") == dispatch_id
    ]
    assert [(e.from_status, e.to_status) for e in queued] == [("draft", "queued")]
    assert get_queue(DISPATCH).job_ids == [send.send_job_id(dispatch_id)]


def test_dispatch_goal_enqueues_each_dispatch_under_its_own_id(goal):
    goal_id = goal.id
    ids = [delegated(goal, title=f"job {i}", price=500).id for i in range(3)]
    db.session.remove()
    goal = db.session.get(Goal, goal_id)
    with statements() as seen:
        dispatches = service.dispatch_goal(goal)
    assert seen["commits"] == [len(seen["sql"])]  # no reload of any dispatch to enqueue it
    db.session.expire_all()
    by_job = {d.job_id: d.id for d in db.session.query(Dispatch)}
    assert sorted(by_job) == sorted(ids)
    queue = get_queue(DISPATCH)
    assert sorted(queue.job_ids) == sorted(send.send_job_id(i) for i in by_job.values())
    for dispatch_id in by_job.values():
        assert Job.fetch(send.send_job_id(dispatch_id), connection=queue.connection).args == (
            dispatch_id,
        )
    assert len(dispatches) == 3


def test_a_price_edit_committed_before_the_dispatch_is_seen(goal):
    """The lock still reloads the job: an edit another process committed after the request
    loaded it is what gets reserved and ordered."""
    goal_id = goal.id
    job = fresh_job(delegated(goal, price=500).id)
    assert job.price_cents == 500
    with db.engine.begin() as other:  # another process's edit, after we loaded the job
        other.execute(text("UPDATE micro_jobs SET price_cents = 800 WHERE id = :id"),
                      {"id": job.id})  # fmt: skip
    dispatch_id = service.dispatch_job(job).id
    db.session.expire_all()
    places = db.session.get(Dispatch, dispatch_id).assignments
    assert [p.price_cents for p in places] == [800]
    assert db.session.get(Goal, goal_id).reserved_cents == places[0].held_cents >= 800


def staged(goal, n: int) -> list[int]:
    ids = [stage(delegated(goal, title=f"job {i}", price=500)).id
           for i in range(n)]  # fmt: skip
    db.session.remove()
    return ids


def test_the_send_task_preloads_in_one_statement_each_dispatch_its_own(goal):
    ids = staged(goal, 3)
    claimed = send_batch.claim(ids[0], 3)
    assert [d.id for d in claimed] == ids
    with statements() as seen:
        kept = send_batch.preload(claimed)
        by_dispatch = {d.id: (d.job.id, [p.id for p in d.assignments]) for d in claimed}
        connections = {d.connection.id for d in claimed}
    assert len(seen["sql"]) == 1, seen["sql"]
    db.session.rollback()
    db.session.expire_all()
    for dispatch_id in ids:
        d = db.session.get(Dispatch, dispatch_id)
        assert by_dispatch[dispatch_id] == (d.job_id, [p.id for p in d.assignments])
        assert len(by_dispatch[dispatch_id][1]) == 1
    assert connections == {db.session.get(Dispatch, ids[0]).connection_id}
    assert len(kept) == 3 + 3 + 3 + 1  # dispatches, jobs, places, the connection


def test_the_preload_of_a_dispatch_without_connection_gives_none(goal):
    [dispatch_id] = staged(goal, 1)
    db.session.execute(update(Dispatch).values(connection_id=None))
    db.session.commit()
    claimed = send_batch.claim(dispatch_id, 1)
    send_batch.preload(claimed)
    assert claimed[0].connection is None
    assert claimed[0].job.id == db.session.get(Dispatch, dispatch_id).job_id
    assert len(claimed[0].assignments) == 1
    db.session.rollback()
    assert db.session.query(Connection).count() == 1  # a connection exists: not joined to it
