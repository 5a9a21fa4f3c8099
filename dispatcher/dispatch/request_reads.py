"""What a dispatch request reads about its job, in one statement after the job's lock.

Why (issue 12, idle latency): `dispatch_job` used to read the goal, the children, the
connection and the job's places in four statements, each lazily, at ~1 ms of ORM each. Here
they are one SELECT of the goal, outer-joined to the job's connection, with whether the job
has children and how many of its places are still live as scalar subqueries. It runs after
`lock_job`, so it sees every commit made before the lock was granted, as the four reads did.

The goal goes into the job's relationship (`set_committed_value`) and the connection into
the session's identity map, where `connections.require` and `adapter_for_connection` find it
by id (the map holds rows weakly: the caller keeps the returned `Reads` while it dispatches);
a job without children gets an empty `children`. A job with children keeps it unloaded:
`check_delegable` loads it and refuses, as before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm.attributes import set_committed_value

from dispatcher.dispatch import places, request_folds
from dispatcher.extensions import db
from dispatcher.models import Connection, Goal, MicroJob


@dataclass(frozen=True)
class Reads:
    """What `read_for_dispatch` found: `live` is the count of the job's places in flight,
    accepted or paid (for `places.missing`)."""

    goal: Goal
    connection: Connection | None
    live: int
    #: the next order id, taken from its sequence on PostgreSQL (request_folds.next_order_id)
    order_id: int | None = None


@functools.cache
def _statement(order_id: bool = False) -> Select:
    """Built once: constructing this statement costs more Python than running it, and a new
    alias of micro_jobs per call would also defeat the statement cache (both measured).
    `order_id`: also take the next order id (PostgreSQL)."""
    job_id = bindparam("job_id")
    extra = [request_folds.next_order_id().label("order_id")] if order_id else []
    return (
        select(
            Goal,
            Connection,
            select(MicroJob.id).where(MicroJob.parent_id == job_id).exists().label("has_children"),
            places.live_count(job_id).label("live"),
            *extra,
        )
        .outerjoin(Connection, Connection.id == bindparam("connection_id"))
        .where(Goal.id == bindparam("goal_id"))
    )


def read_for_dispatch(job: MicroJob) -> Reads:
    """Load the locked job's goal, connection, children flag and live places in one
    statement."""
    folds = request_folds.folds()
    row = db.session.execute(
        _statement(folds),
        {"job_id": job.id, "goal_id": job.goal_id, "connection_id": job.connection_id},
    ).one()
    set_committed_value(job, "goal", row.Goal)
    if not row.has_children:
        set_committed_value(job, "children", [])
    return Reads(row.Goal, row.Connection, int(row.live), row.order_id if folds else None)
