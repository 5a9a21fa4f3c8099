"""What a dispatch request reads about its job, in one statement after the job's lock.

Why (issue 12, idle latency): `dispatch_job` used to read the goal, the children, the
connection and the job's places in four statements, each lazily, at ~1 ms of ORM each. Here
they are one SELECT of the goal, outer-joined to the job's connection, with whether the job
has children and how many of its places are still live as scalar subqueries. It runs after
`lock_job`, so it sees every commit made before the lock was granted, as the four reads did.
On PostgreSQL the lock and this read are one statement (`lock_and_read`), guarded so that it
locks nothing when a lock holder committed after its snapshot; then the two run as before.

The goal goes into the job's relationship (`set_committed_value`) and the connection into
the session's identity map, where `connections.require` and `adapter_for_connection` find it
by id (the map holds rows weakly: the caller keeps the returned `Reads` while it dispatches);
a job without children gets an empty `children`. A job with children keeps it unloaded:
`check_delegable` loads it and refuses, as before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, literal_column, select, update
from sqlalchemy.orm.attributes import set_committed_value

from dispatcher import locking
from dispatcher.dispatch import places, request_folds
from dispatcher.extensions import db
from dispatcher.models import Connection, Goal, MicroJob
from dispatcher.models._base import utcnow


@dataclass(frozen=True)
class Reads:
    """What `read_for_dispatch` found: `live` is the count of the job's places in flight,
    accepted or paid (for `places.missing`)."""

    goal: Goal
    connection: Connection | None
    live: int
    #: the next order id, taken from its sequence on PostgreSQL (request_folds.next_order_id)
    order_id: int | None = None


def _read_columns(job_id: Any) -> list:
    """What a dispatch request reads besides the job: its goal, its connection, whether it
    has children, and how many of its places are live (`Reads`)."""
    return [
        Goal,
        Connection,
        select(MicroJob.id).where(MicroJob.parent_id == job_id).exists().label("has_children"),
        places.live_count(job_id).label("live"),
    ]


@functools.cache
def _statement(order_id: bool = False) -> Select:
    """Built once: constructing this statement costs more Python than running it, and a new
    alias of micro_jobs per call would also defeat the statement cache (both measured).
    `order_id`: also take the next order id (PostgreSQL)."""
    job_id = bindparam("job_id")
    extra = [request_folds.next_order_id().label("order_id")] if order_id else []
    return (
        select(*_read_columns(job_id), *extra)
        .outerjoin(Connection, Connection.id == bindparam("connection_id"))
        .where(Goal.id == bindparam("goal_id"))
    )


def lock_and_read(job: MicroJob) -> Reads:
    """`lock_job`, then `read_for_dispatch`: on PostgreSQL in one statement when it is safe
    (`_lock_and_read_once`), else in two."""
    if request_folds.folds():
        reads = _lock_and_read_once(job)
        if reads is not None:
            return reads
    locking.lock_job(job)
    return read_for_dispatch(job)


@functools.cache
def _locked_statement() -> Select:
    """The lock's UPDATE ... RETURNING as a CTE, joined to what `_statement` reads.

    A statement reads with one snapshot, taken when it starts: if it waits for the job's
    lock, what the holder committed meanwhile (its places, say) is invisible to its reads;
    only the locked row itself is re-read (PostgreSQL's EvalPlanQual). So the UPDATE is
    guarded by the row version its snapshot saw (`xmin`): every holder of a job's lock
    writes the job's row (locking.py), so a commit under that lock after the snapshot makes
    a new version, the recheck finds the guard false, and nothing is locked or returned."""
    jobs = MicroJob.__table__
    job_id = bindparam("job_id")
    seen = (
        select(jobs.c.id, literal_column("micro_jobs.xmin").label("seen"))
        .where(jobs.c.id == job_id)
        .cte("seen")
    )
    locked = (
        update(jobs)
        .where(jobs.c.id == seen.c.id, literal_column("micro_jobs.xmin") == seen.c.seen)
        .values(updated_at=bindparam("at"))
        .returning(*locking.job_columns())
        .cte("locked")
    )
    return (
        select(
            *[locked.c[c.name].label(f"job_{c.name}") for c in locking.job_columns()],
            *_read_columns(job_id),
            request_folds.next_order_id().label("order_id"),
        )
        .select_from(locked)
        .join(Goal, Goal.id == locked.c.goal_id)
        .outerjoin(Connection, Connection.id == locked.c.connection_id)
    )


def _lock_and_read_once(job: MicroJob) -> Reads | None:
    """Lock the job and read what `read_for_dispatch` reads in one statement (PostgreSQL);
    None when it could not, having locked nothing: the job's row changed after the
    statement's snapshot (its reads could miss what that commit wrote), or it is gone. The
    caller then locks and reads in two statements, each with a fresh snapshot."""
    db.session.flush()  # what the job holds unwritten is written first, as lock_job does
    row = db.session.execute(_locked_statement(), {"job_id": job.id, "at": utcnow()}).first()
    if row is None:
        return None
    width = len(locking.job_columns())
    locking.load_locked(job, row[:width])
    return _reads(job, row)


def read_for_dispatch(job: MicroJob) -> Reads:
    """Load the locked job's goal, connection, children flag and live places in one
    statement."""
    row = db.session.execute(
        _statement(request_folds.folds()),
        {"job_id": job.id, "goal_id": job.goal_id, "connection_id": job.connection_id},
    ).one()
    return _reads(job, row)


def _reads(job: MicroJob, row: Any) -> Reads:
    set_committed_value(job, "goal", row.Goal)
    if not row.has_children:
        set_committed_value(job, "children", [])
    order_id = row.order_id if "order_id" in row._fields else None
    return Reads(row.Goal, row.Connection, int(row.live), order_id)
