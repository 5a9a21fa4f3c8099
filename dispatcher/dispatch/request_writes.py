"""What a dispatch request writes, as cached Core statements instead of the unit of work.

Why (issue 12, idle latency): `dispatch_job` writes four rows (the order, its places, the
job's status with its reservation, the job's Event). As ORM flushes they cost ~4.5 ms of
Python on SQLite for 4 statements that take well under 1 ms to run: the flush sorts the
session's changes, builds each INSERT and UPDATE, and fetches back server values. Here each is
a statement built once (functools.cache), run with its values; the order stays an ORM object
for the callers (the API answers with it, `dispatch_goal` enqueues it by identity): it is put
into the session as a persistent row with every column set, so reading it loads nothing.

The money and the rules are unchanged: the budget's guarded UPDATEs are budget.py's, the
job's move is checked by the job machine (`lifecycle.plan` / `lifecycle.written`), and all of
it runs in the caller's transaction under the job's row lock.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Insert, Table, Update, bindparam, insert, update
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from dispatcher import lifecycle
from dispatcher.extensions import db
from dispatcher.models import Assignment, Dispatch, MicroJob
from dispatcher.models._base import utcnow


def _run(statement: Any, params: Any) -> Any:
    """Run a Core statement on the session's connection, in its transaction: no autoflush
    (the job's reservation, set by budget.reserve, is written by `move_job`, not flushed
    first) and none of the ORM's execution around it."""
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
    return [c.key for c in table.columns if not c.primary_key], dict(_defaults(table))


@functools.cache
def _insert_order() -> Insert:
    table = Dispatch.__table__
    return insert(table).returning(table.c.id)


def stage_order(dispatch: Dispatch) -> int:
    """INSERT a new, transient order with every column it holds (a column left unset gets its
    default, set on the object too), then put it in the session as a clean, persistent row:
    no flush writes it again and no attribute needs a load. Returns its id."""
    names, defaults = _order_columns()
    given = dispatch.__dict__
    values = {}
    for name in names:
        if name in given:
            values[name] = given[name]
        else:
            values[name] = _default_value(defaults[name]) if name in defaults else None
            setattr(dispatch, name, values[name])
    dispatch.id = _run(_insert_order(), values).scalar_one()
    make_transient_to_detached(dispatch)
    db.session.add(dispatch)
    return dispatch.id


@functools.cache
def _place_defaults() -> dict[str, Any]:
    return {name: default for name, default in _defaults(Assignment.__table__)}


@functools.cache
def _insert_places() -> Insert:
    return insert(Assignment.__table__)


def insert_places(rows: list[dict[str, Any]]) -> None:
    """INSERT an order's places in one executemany; columns a row leaves out get their
    defaults (every row then has every column, so the statement is one)."""
    now = utcnow()
    defaults = _place_defaults()
    full = []
    for row in rows:
        values = dict(row)
        for name, default in defaults.items():
            if name not in values:
                values[name] = now if default.is_callable else default.arg
        full.append(values)
    _run(_insert_places(), full)


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
    _run(
        _update_job(),
        {"job_id": job.id, "to_status": str(move.after), "to_reserved": total, "at": at},
    )
    set_committed_value(job, "reserved_cents", total)
    set_committed_value(job, "updated_at", at)
    lifecycle.insert_event(event)
    return move.after
