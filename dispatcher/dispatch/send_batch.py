"""Several dispatches per send task: one claim, then one commit for all the placements.

Why: one RQ job per order paid a claim commit and a placing commit (each an fsync on SQLite)
plus RQ's own round trips for every order, which kept a worker at well under half the speed
of a bare RQ worker posting the same orders (issue 12). `send_dispatch(X)` therefore also
takes up to DISPATCH_BATCH - 1 other due dispatches of X's channel (same adapter and
connection), oldest first, in the one conditional UPDATE that claims X, and records every
placement in one transaction, in a few statements for the whole batch (on PostgreSQL every
statement is a network round trip): one UPDATE locks the jobs, one guarded UPDATE places the
dispatches, two SELECTs read the jobs' places and orders, and the commit's flush writes the
Events and the jobs' statuses together. Rows are still judged one by one: each job's lock
and reload, the dispatch's source state, the job's legal move.

Each dispatch stays on its own: its own lease (`next_attempt_at`) and attempt count, its own
look-up before any attempt after the first, its own backoff or failure, and its own RQ job
(`dispatch-<id>`), still queued, which finds it placed later ("skipped: placed") or, if this
worker died with the lease, takes it again once the lease runs out. Each row is judged
"pending and due" under its row lock, and rows another claim holds are passed over, so two
workers racing split the rows and never share one (`_claim_many`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Sequence

from flask import current_app
from sqlalchemy import Integer, and_, any_, bindparam, case, func, or_, select, union_all, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from adapters.base import Receipt
from dispatcher import lifecycle
from dispatcher.dispatch import places
from dispatcher.dispatch.backoff import lease
from dispatcher.dispatch.cancel import enqueue_cancel
from dispatcher.extensions import db
from dispatcher.locking import lock_jobs
from dispatcher.models import Assignment, Connection, Dispatch, DispatchState, MicroJob
from dispatcher.models._base import utcnow
from dispatcher.queues import enqueue_quietly
from dispatcher.redis_clock import SharedClock, shared_clock, shared_utcnow
from dispatcher.write_gate import write_gate

log = logging.getLogger(__name__)

#: no further platform call starts this long after the first: the task's RQ timeout
#: (backoff.call_timeout) allows one look-up and one create plus 10 s, so a call started
#: within this budget ends inside the timeout, and inside every claimed lease.
CALL_BUDGET_SECONDS = 5.0


def claim(
    dispatch_id: int, size: int, clock: SharedClock | None = None, *, beside: bool = False
) -> list[Dispatch]:
    """Lease `dispatch_id` and up to `size - 1` other pending, due dispatches of the same
    adapter and connection (lowest ids first), counting an attempt on each: one UPDATE ...
    RETURNING. No other row is claimed unless `dispatch_id` itself is pending and due; with
    `beside`, its channel's due rows are claimed whatever its own state (a second worker
    whose dispatch is held by the first's batch works beside it instead of behind it).
    Returns the claimed rows, `dispatch_id` first when it is among them; the transaction
    stays open (`commit_keeping` ends it)."""
    now = (clock or shared_clock()).now()
    settings = current_app.config["SETTINGS"]
    params = {"dispatch_id": dispatch_id, "now": now, "until": now + lease(settings)}
    if size <= 1:
        statement = _claim_one()
    else:
        dialect = db.session.get_bind(Dispatch).dialect.name
        statement = _claim_many(dialect, mine_due=not beside)
        params["extras"] = size - 1
    rows = db.session.scalars(
        statement, params, execution_options={"populate_existing": True}
    ).all()
    return sorted(rows, key=lambda d: (d.id != dispatch_id, d.id))


def _due(row, pending=None):
    """Pending (`pending`: that test written another way) and its lease, if any, run out."""
    return and_(
        row.state == DispatchState.PENDING if pending is None else pending,
        or_(row.next_attempt_at.is_(None), row.next_attempt_at <= bindparam("now")),
    )


def _claiming(where):
    return (
        update(Dispatch)
        .where(where)
        .values(attempts=Dispatch.attempts + 1, next_attempt_at=bindparam("until"))
        .returning(Dispatch)
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _claim_one():
    return _claiming(and_(Dispatch.id == bindparam("dispatch_id"), _due(Dispatch)))


@functools.cache
def _claim_many(dialect: str, *, mine_due: bool):
    """Built once per dialect (building it costs more CPU than running it). The ids are
    chosen first, each exactly once, then updated by primary key, in a plan that stays short
    whatever the statistics say (with those a previous drain left, taken with nothing
    pending, PostgreSQL re-ran a sort of the whole backlog for every pending row: issue 12):

    - the asked-for row, read by its id and locked (FOR UPDATE: it waits for a claim in
      flight), is chosen only if it is due once locked;
    - its channel's other due rows, lowest ids first, up to `extras` of them, read in the
      order of ix_dispatches_state_channel (state, adapter, connection, id); rows another
      claim holds are passed over (SKIP LOCKED), not waited for, so two workers take
      disjoint rows at once. None unless the asked-for row is due (`mine_due`; else it only
      names the channel). A NULL connection is a channel of its own: two branches, each an
      equality the index serves, one of them always empty.

    Every chosen row was judged due under its row lock (PostgreSQL re-checks a locked row's
    condition on its newest version), or in this one statement under the database's write
    lock (SQLite: no row locks, no FOR UPDATE rendered), so the UPDATE judges only the ids.
    Two PostgreSQL-only forms keep its planner on that plan: the ids go in as
    `= ANY(ARRAY(...))`, evaluated once, never re-run per row as an IN sub-select may be
    (that re-run passes over the rows it locked itself and takes more), with no join to
    order; and the extras' "pending" is `state = ANY('{pending}')`, which the index serves
    as well, but which does not make `state` a constant of the ORDER BY: ordered by `id`
    alone, the primary key offers that order too, and with fresh statistics the planner
    walks it through every placed row before the first pending one."""
    postgres = dialect == "postgresql"
    asked = bindparam("dispatch_id")

    def of_asked(column_of):
        mine = aliased(Dispatch)
        return select(column_of(mine)).where(mine.id == asked).scalar_subquery()

    adapter = of_asked(lambda m: case((_due(m), m.adapter)) if mine_due else m.adapter)
    connection = of_asked(lambda m: m.connection_id)

    def locked(rows):  # FOR UPDATE in a member of a UNION: in a sub-select of its own
        rows = rows.subquery()
        return select(rows.c.id)

    def next_due(same_connection):
        other = aliased(Dispatch)
        pending = other.state == any_(pg_array([str(DispatchState.PENDING)])) if postgres else None
        return locked(
            select(other.id)
            .where(_due(other, pending), other.adapter == adapter, same_connection(other))
            .where(other.id != asked)
            .order_by(other.state, other.adapter, other.connection_id, other.id)
            .limit(bindparam("extras", type_=Integer))
            .with_for_update(skip_locked=True)
        )

    mine = aliased(Dispatch)
    chosen = union_all(
        locked(
            select(case((_due(mine), mine.id)).label("id"))
            .where(mine.id == asked)
            .with_for_update()
        ),
        next_due(lambda o: o.connection_id == connection),
        next_due(lambda o: and_(o.connection_id.is_(None), connection.is_(None))),
    )
    if postgres:
        return _claiming(Dispatch.id == any_(func.array(chosen.scalar_subquery())))
    return _claiming(Dispatch.id.in_(chosen))


def preload(claimed: Sequence[Dispatch]) -> list[object]:
    """Load the claimed dispatches' jobs, places and connection in one statement (jobs
    joined to their claimed places and to the channel's connection), not three per dispatch:
    job_spec reads them all, and each statement on the way to the platform is latency
    (issue 12). Returns the rows loaded (the session holds its rows weakly: the caller keeps
    them alive)."""
    connection_id = claimed[0].connection_id  # one channel: the same connection for every row
    rows = db.session.execute(
        select(MicroJob, Assignment, Connection)
        .where(MicroJob.id.in_({d.job_id for d in claimed}))
        .outerjoin(
            Assignment,
            and_(
                Assignment.job_id == MicroJob.id,
                Assignment.dispatch_id.in_([d.id for d in claimed]),
            ),
        )
        .outerjoin(Connection, Connection.id == connection_id)  # None: IS NULL, no row
        .order_by(Assignment.position, Assignment.id)
    ).all()
    return _attach(claimed, rows)


def preload_leased(dispatch_id: int) -> list[object]:
    """`preload` for a dispatch its request leased (first_attempt.py), the dispatch itself
    read in the same statement since no claim returned it: the rows loaded, the dispatch
    first; empty if it is gone."""
    rows = db.session.execute(
        select(Dispatch, MicroJob, Assignment, Connection)
        .join(MicroJob, MicroJob.id == Dispatch.job_id)
        .outerjoin(Assignment, Assignment.dispatch_id == Dispatch.id)
        .outerjoin(Connection, Connection.id == Dispatch.connection_id)
        .where(Dispatch.id == dispatch_id)
        .order_by(Assignment.position, Assignment.id),
        execution_options={"populate_existing": True},
    ).all()
    return _attach([rows[0][0]], [row[1:] for row in rows]) if rows else []


def _attach(claimed: Sequence[Dispatch], rows: Sequence) -> list[object]:
    """Hang each dispatch's job, places and connection from (job, place, connection) rows."""
    jobs = {job.id: job for job, _, _ in rows}
    found = [place for _, place, _ in rows if place is not None]
    connection = rows[0][2] if rows else None
    for dispatch in claimed:
        set_committed_value(dispatch, "job", jobs[dispatch.job_id])
        set_committed_value(dispatch, "connection", connection)
        mine = [a for a in found if a.dispatch_id == dispatch.id]
        set_committed_value(dispatch, "assignments", mine)
    return [*claimed, *jobs.values(), *found, *([connection] if connection else [])]


def commit_keeping(rows: Iterable[object]) -> None:
    """Commit, keeping the loaded values of `rows` (what this transaction wrote or read under
    the lease) and the rows they point to, instead of reading them again after the commit."""
    kept = []
    for row in rows:
        state = sa_inspect(row)
        values = {}
        for attr in state.mapper.attrs:
            if attr.key in state.dict:
                value = state.dict[attr.key]
                values[attr.key] = list(value) if isinstance(value, list) else value
        kept.append((row, values))
    db.session.commit()
    for row, values in kept:
        for name, value in values.items():
            set_committed_value(row, name, value)


def in_time(started: float) -> bool:
    """Whether another platform call may still start (see CALL_BUDGET_SECONDS)."""
    return time.monotonic() - started < CALL_BUDGET_SECONDS


def give_back(dispatch_ids: Sequence[int]) -> None:
    """Release leases taken but not used (no call went out): the attempt is not counted and
    the dispatch is due at once, for its own RQ job."""
    if not dispatch_ids:
        return
    with write_gate():
        db.session.execute(
            update(Dispatch)
            .where(Dispatch.id.in_(dispatch_ids), Dispatch.state == DispatchState.PENDING)
            .values(attempts=Dispatch.attempts - 1, next_attempt_at=shared_utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def record_placed(placements: Sequence[tuple[Dispatch, Receipt, bool]]) -> dict[int, str]:
    """Record every placement in one transaction, under its job's row lock (jobs locked in id
    order, so two batches never wait on each other in a cycle); one commit. Returns each
    dispatch's outcome ("placed", "adopted", "already placed", or a cancel owed)."""
    ordered = sorted(placements, key=lambda p: (p[0].job_id, p[0].id))
    with write_gate():
        outcomes = _place_all(ordered)
        db.session.commit()
    for dispatch_id, outcome in outcomes.items():
        if outcome.endswith(": cancelling"):
            enqueue_quietly(enqueue_cancel, dispatch_id)
    return outcomes


def _place_all(ordered: Sequence[tuple[Dispatch, Receipt, bool]]) -> dict[int, str]:
    """The placements in a few statements for all of them, not several each (every statement
    is a round trip on PostgreSQL): lock and reload the jobs, move the dispatches (the
    lifecycle's guard checked per row), read the jobs' places and orders; the Events and the
    jobs' new statuses go out in the commit's flush (one INSERT, one executemany on
    PostgreSQL). Then, placement by placement in (job, dispatch) order, what one-by-one
    placing stored: the dispatch's Event, the job's derived status (`sync_job` sees the
    batch's earlier placements of the same job, as before), a teammate's brief. The
    dispatch's values are not read back: the guarded UPDATE judges its state, and only this
    lease's holder writes the rest."""
    lock_jobs([d.job for d, _, _ in ordered])
    now = utcnow()
    values = {d.id: _placing(r) for d, r, _ in ordered}
    moved = lifecycle.DISPATCH.guarded_update_many(
        Dispatch, values, "place", placed_at=now, next_attempt_at=None, last_error=None
    )
    done = [p for p in ordered if p[0].id in moved]
    known = places.standing(d.job for d, _, _ in done) if done else {}
    outcomes = {}
    for dispatch, receipt, adopted in ordered:
        if dispatch.id not in moved:
            outcomes[dispatch.id] = _not_placed(dispatch, receipt)
            continue
        placed = {**values[dispatch.id], "placed_at": now, "next_attempt_at": None,
                  "last_error": None, "state": DispatchState.PLACED}  # fmt: skip
        for name, value in placed.items():
            set_committed_value(dispatch, name, value)
        _recorded(dispatch, dispatch.job, receipt, adopted, known[dispatch.job_id])
        outcomes[dispatch.id] = "adopted" if adopted else "placed"
    return outcomes


def _placing(receipt: Receipt) -> dict[str, object]:
    """The columns a placement writes from its receipt."""
    return {"external_id": receipt.external_id, "external_url": receipt.url or None}


def _recorded(
    dispatch: Dispatch,
    job: MicroJob,
    receipt: Receipt,
    adopted: bool,
    known: places.Standing,
) -> None:
    """What follows a placement: its Event, the job's derived status, a teammate's brief."""
    data = {
        "dispatch_id": dispatch.id,
        "external_id": receipt.external_id,
        "attempts": dispatch.attempts,
        "adopted": adopted,
    }
    actor = f"adapter:{dispatch.adapter}"
    lifecycle.record(job, "dispatch.place", from_status=DispatchState.PENDING,
                     to_status=DispatchState.PLACED, actor=actor, data=data)  # fmt: skip
    places.sync_job(job, actor=actor, data=data, known=known)
    from dispatcher.teammates.briefs import stage_brief

    stage_brief(dispatch, job)  # a teammate channel's brief goes out with this commit


def _not_placed(dispatch: Dispatch, receipt: Receipt) -> str:
    """The placement's dispatch was not pending any more: placed already by another
    attempt, or cancelled or expired while the call was out."""
    db.session.refresh(dispatch)
    if dispatch.state == DispatchState.PLACED:
        return "already placed"  # another attempt placed it (the same order, by key)
    # Cancelled or expired while the call was out: do not keep an order nobody wants.
    dispatch.external_id = dispatch.external_id or receipt.external_id
    dispatch.external_url = dispatch.external_url or receipt.url or None
    dispatch.next_attempt_at = shared_utcnow()
    return f"placed after it was {dispatch.state}: cancelling"
