"""What a dispatch request writes, as cached Core statements instead of the unit of work.

Why (issue 12, idle latency): `dispatch_job` writes four rows (the order, its places, the
job's status with its reservation, the job's Event). As ORM flushes they cost ~4.5 ms of
Python on SQLite for 4 statements that take well under 1 ms to run: the flush sorts the
session's changes, builds each INSERT and UPDATE, and fetches back server values. Here each is
a statement built once (functools.cache), run with its values; the order stays an ORM object
for the callers (the API answers with it, `dispatch_goal` enqueues it by identity): it is put
into the session as a persistent row with every column set, so reading it loads nothing.

On PostgreSQL the same rows are written in one statement, or two when an envelope is above
the job, not five (request_folds.py).

The money and the rules are unchanged: the budget's guarded UPDATEs are budget.py's, the
job's move is checked by the job machine (`lifecycle.plan` / `lifecycle.written`), and all of
it runs in the caller's transaction under the job's row lock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert, Table, Update, bindparam, insert, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from dispatcher import lifecycle
from dispatcher.dispatch import request_folds
from dispatcher.errors import BudgetExceeded
from dispatcher.extensions import db
from dispatcher.models import Assignment, Dispatch, MicroJob
from dispatcher.models._base import utcnow


def _run(statement: Any, params: Any) -> Any:
    """Run a Core statement on the session's connection, in its transaction, without the
    ORM's execution around it (its autoflush check included): that Python is what this
    module saves."""
    return db.session.connection().execute(statement, params)


def _defaults(table: Table) -> list[tuple[str, Any]]:
    """(column, Python-side default) of every column that has one, the key left out."""
    return [
        (c.key, c.default)
        for c in table.columns
        if not c.primary_key and c.default is not None and not c.default.is_sequence
    ]


def _default_value(default: Any) -> Any:
    return default.arg(None) if default.is_callable else default.arg


@functools.cache
def _order_columns() -> tuple[list[str], dict[str, Any]]:
    table = Dispatch.__table__
    return [c.key for c in request_folds.writable(table)], dict(_defaults(table))


@functools.cache
def _insert_order() -> Insert:
    table = Dispatch.__table__
    return insert(table).returning(table.c.id)


def order_values(dispatch: Dispatch) -> dict[str, Any]:
    """Every column of a new, transient order but its id: what it holds, else the column's
    default, set on the object too (so that no attribute of it needs a load later)."""
    names, defaults = _order_columns()
    given = dispatch.__dict__
    values = {}
    for name in names:
        if name in given:
            values[name] = given[name]
        else:
            values[name] = _default_value(defaults[name]) if name in defaults else None
            setattr(dispatch, name, values[name])
    return values


def attach(dispatch: Dispatch, order_id: int) -> None:
    """Put an order inserted by a Core statement into the session as a clean, persistent
    row: no flush writes it again."""
    dispatch.id = order_id
    make_transient_to_detached(dispatch)
    db.session.add(dispatch)


def stage_order(dispatch: Dispatch) -> int:
    """INSERT a new, transient order (`order_values`) and attach it; its id."""
    attach(dispatch, _run(_insert_order(), order_values(dispatch)).scalar_one())
    return dispatch.id


@dataclass(frozen=True)
class JobMove:
    """The job's move that follows its new order (`move_job`): the Event's `data` gets the
    order's id first, as `dispatch_id`.

    `before_commit`: the caller commits right after the move. Where the whole request is one
    statement (PostgreSQL, `_dispatch_all`), its COMMIT then rides that statement's round
    trip, and `before_commit` is called with the order's id just before it; what it returns
    is called once the statement is done (or failed), so the caller's own round trip can be
    in flight meanwhile. Elsewhere it is not called, and the caller's commit is a statement
    of its own."""

    action: str
    actor: str
    data: dict[str, Any]
    before_commit: Callable[[int], Callable[[], object]] | None = None


def open_order(
    job: MicroJob,
    dispatch: Dispatch,
    place: dict[str, Any],
    count: int,
    move: JobMove | None = None,
    order_id: int | None = None,
) -> None:
    """Insert the order, reserve its `amount_cents` (budget.reserve, the job locked) and
    insert its `count` places (`place`: the columns they share); then `move` the job. On
    PostgreSQL the goal's reservation, the order and the places are one statement, and with
    the order's id known (`order_id`, request_folds.next_order_id) and no envelope above the
    job, the job's move and its Event are in it too (request_folds.py). A refused
    reservation leaves no order: none was inserted, or it is deleted again, so a caller that
    commits after the refusal stores no order without its money (nor a moved job)."""
    from dispatcher.dispatch import budget

    amount = dispatch.amount_cents
    try:
        if request_folds.folds() and amount > 0:  # nothing to reserve: nothing to fold into
            if move is not None and order_id is not None and not budget.has_envelopes(job):

                def reserve_all() -> bool:
                    return _dispatch_all(job, dispatch, place, count, move, order_id)

                budget.reserve(job, amount, locked=True, goal_update=reserve_all)
                return

            def reserve_goal() -> bool:
                order_id = request_folds.insert_order(
                    job.goal_id, amount, order_values(dispatch), place_values(place), count
                )
                if order_id is not None:
                    attach(dispatch, order_id)
                return order_id is not None

            budget.reserve(job, amount, locked=True, goal_update=reserve_goal)
        else:
            stage_order(dispatch)
            budget.reserve(job, amount, locked=True)
            insert_places(
                [{**place, "dispatch_id": dispatch.id, "position": n} for n in range(1, count + 1)]
            )
    except BudgetExceeded:
        if sa_inspect(dispatch).persistent:
            db.session.delete(dispatch)
            db.session.flush()
        raise
    if move is not None:
        data = {"dispatch_id": dispatch.id, **move.data}
        move_job(job, move.action, reserved=amount, actor=move.actor, data=data)


def _dispatch_all(
    job: MicroJob,
    dispatch: Dispatch,
    place: dict[str, Any],
    count: int,
    move: JobMove,
    order_id: int,
) -> bool:
    """The goal's reservation, the order, its places, the job's move and its Event in one
    statement (request_folds.dispatch_all); whether the goal had room. The job machine
    checks the move first; a goal without room wrote nothing, and the job keeps its
    status."""
    data = {"dispatch_id": order_id, **move.data}
    planned = lifecycle.plan(move.action, start=job.status, data=data, job_id=job.id)
    total = job.reserved_cents + dispatch.amount_cents
    event = lifecycle.written(job, planned, actor=move.actor)
    at = utcnow()
    values = {"job_id": job.id, "to_status": str(planned.after), "to_reserved": total, "at": at}
    row = lifecycle.event_row(event)
    # sent before the statement, answered after it: the two round trips overlap
    answer = move.before_commit(order_id) if move.before_commit is not None else None
    try:
        event_id = request_folds.dispatch_all(
            order_id, job.goal_id, dispatch.amount_cents, order_values(dispatch),
            place_values(place), count, values, row, commit=answer is not None,
        )  # fmt: skip
    finally:
        if answer is not None:
            answer()
    if event_id is None:
        set_committed_value(job, "status", planned.before)
        return False
    attach(dispatch, order_id)
    lifecycle.inserted_event(row, event_id)
    set_committed_value(job, "reserved_cents", total)
    set_committed_value(job, "updated_at", at)
    return True


@functools.cache
def _place_columns() -> tuple[list[str], dict[str, Any]]:
    table = Assignment.__table__
    names = [c.key for c in request_folds.writable(table, "dispatch_id", "position")]
    return names, dict(_defaults(table))


def place_values(place: dict[str, Any]) -> dict[str, Any]:
    """Every column the places of one order share (all but the order's id and the
    position): `place`'s, else the column's default (one time for all the rows)."""
    names, defaults = _place_columns()
    now = utcnow()
    values = {}
    for name in names:
        if name in place:
            values[name] = place[name]
        elif name in defaults:
            values[name] = now if defaults[name].is_callable else defaults[name].arg
        else:
            values[name] = None
    return values


@functools.cache
def _insert_places() -> Insert:
    return insert(Assignment.__table__)


def insert_places(rows: list[dict[str, Any]]) -> None:
    """INSERT an order's places in one executemany (`rows`: each place's dispatch_id,
    position and `place_values`' columns; every row has every column, so the statement is
    one)."""
    _run(_insert_places(), [{**place_values(row), **row} for row in rows])


@functools.cache
def _update_job() -> Update:
    table = MicroJob.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("job_id"))
        .values(
            status=bindparam("to_status"),
            reserved_cents=bindparam("to_reserved"),
            updated_at=bindparam("at"),
        )
    )


def move_job(
    job: MicroJob,
    action: str,
    *,
    reserved: int,
    actor: str,
    data: dict[str, Any] | None = None,
) -> lifecycle.Status:
    """Move the locked job by `action` through the job machine and write, in one UPDATE, its
    new status with its own reservation grown by `reserved` (what `budget.reserve(...,
    locked=True)` left to the caller), then its Event. The job's attributes hold what was
    written, without history, so a flush (the commit's) has nothing to do. Returns the new
    status."""
    move = lifecycle.plan(action, start=job.status, data=data, job_id=job.id)
    total = job.reserved_cents + reserved
    event = lifecycle.written(job, move, actor=actor)
    at = utcnow()
    values = {"job_id": job.id, "to_status": str(move.after), "to_reserved": total, "at": at}
    if request_folds.folds():  # the UPDATE and the Event's INSERT in one statement
        row = lifecycle.event_row(event)
        lifecycle.inserted_event(row, request_folds.move_job(values, row))
    else:
        _run(_update_job(), values)
        lifecycle.insert_event(event)
    set_committed_value(job, "reserved_cents", total)
    set_committed_value(job, "updated_at", at)
    return move.after
