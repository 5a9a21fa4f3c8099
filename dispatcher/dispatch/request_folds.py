"""A dispatch request's writes folded into fewer statements on PostgreSQL.

Why (issue 12, idle latency): on PostgreSQL each statement is a round trip to the server
(~0.7 ms each in the profile), and `dispatch_job` wrote in five: the order, the goal's guarded
reservation, the places, the job's status with its reservation, and the job's Event. With
data-modifying CTEs they are two:

- the goal's guarded UPDATE, the order's INSERT from its RETURNING and the places' INSERT
  from the order's: a goal with no room returns no row and nothing is inserted, so a
  refusal leaves no order (and none to delete);
- the job's UPDATE and its Event's INSERT from the UPDATE's RETURNING.

When the request knows the order's id before the INSERT (it reads the next one from the
sequence with its other reads) and no envelope above the job can refuse after the goal's
reservation, both are one statement (`dispatch_all`): every write hangs on the goal's
guarded UPDATE, so a goal without room writes nothing at all.

SQLite has no data-modifying CTEs: there the same rows are written one statement each
(request_writes.py). What is written is the same on both, column for column: the columns
come from the models' tables, each value cast to its column's type.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Column, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Compiled, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.functions import Function, func

from dispatcher.extensions import db
from dispatcher.models import Assignment, Dispatch, Event, MicroJob

_DIALECT = postgresql.dialect()


def folds() -> bool:
    """Whether this database takes the folded statements (PostgreSQL)."""
    return db.session.get_bind().dialect.name == "postgresql"


def _cast(name: str, column: Column) -> str:
    return f"CAST(:{name} AS {column.type.compile(dialect=_DIALECT)})"


def _params(prefix: str, columns: list[Column]) -> list:
    return [bindparam(f"{prefix}{c.key}", type_=c.type) for c in columns]


def writable(table: Any, *leave_out: str) -> list[Column]:
    """The columns a new row is written with: all but its key and `leave_out`."""
    return [c for c in table.columns if not c.primary_key and c.key not in leave_out]


#: the goal's guarded reservation, as a CTE: a row only if the goal has room, and every
#: write after it reads from it, so a goal without room writes nothing
_RESERVE = """g AS (
  UPDATE goals SET reserved_cents = reserved_cents + :cents
  WHERE id = :goal_id AND budget_cents - reserved_cents - spent_cents >= :cents
  RETURNING id
)"""


def _reserve_params() -> list:
    table = Dispatch.__table__
    return [
        bindparam("cents", type_=table.c.amount_cents.type),
        bindparam("goal_id", type_=table.c.job_id.type),
    ]


def _insert_places(places: list[Column]) -> str:
    """The order's `:count` places, from the order's CTE `d`."""
    return f"""INSERT INTO assignments (dispatch_id, position, {", ".join(c.name for c in places)})
SELECT d.id, n, {", ".join(_cast("p_" + c.key, c) for c in places)}
FROM d CROSS JOIN generate_series(1, CAST(:count AS INTEGER)) AS n
RETURNING dispatch_id"""


@functools.cache
def _order_statement() -> TextClause:
    orders = writable(Dispatch.__table__)
    places = writable(Assignment.__table__, "dispatch_id", "position")
    sql = f"""
WITH {_RESERVE}, d AS (
  INSERT INTO dispatches ({", ".join(c.name for c in orders)})
  SELECT {", ".join(_cast("o_" + c.key, c) for c in orders)} FROM g
  RETURNING id
)
{_insert_places(places)}"""
    return text(sql).bindparams(
        *_reserve_params(),
        *_params("o_", orders),
        *_params("p_", places),
    )


def insert_order(goal_id: int, cents: int, order: dict[str, Any], place: dict[str, Any],
                 count: int) -> int | None:  # fmt: skip
    """Reserve `cents` on the goal if it has room, and only then insert the order (`order`:
    every column but its id) and `count` places (`place`: every column but the order's id and
    the position, 1 to `count`). Returns the order's id, or None when the goal had no room
    (then nothing was written)."""
    params = {"cents": cents, "goal_id": goal_id, "count": count}
    params.update({f"o_{key}": value for key, value in order.items()})
    params.update({f"p_{key}": value for key, value in place.items()})
    ids = db.session.connection().execute(_order_statement(), params).scalars().all()
    return ids[0] if ids else None


@functools.cache
def _move_statement() -> TextClause:
    table = MicroJob.__table__
    events = writable(Event.__table__)
    sql = f"""
WITH j AS (
  UPDATE micro_jobs SET status = :to_status, reserved_cents = :to_reserved, updated_at = :at
  WHERE id = :job_id
  RETURNING id
)
INSERT INTO events ({", ".join(c.name for c in events)})
SELECT {", ".join(_cast("e_" + c.key, c) for c in events)} FROM j
RETURNING id"""
    return text(sql).bindparams(
        bindparam("to_status", type_=table.c.status.type),
        bindparam("to_reserved", type_=table.c.reserved_cents.type),
        bindparam("at", type_=table.c.updated_at.type),
        bindparam("job_id", type_=table.c.id.type),
        *_params("e_", events),
    )


def move_job(job_values: dict[str, Any], event: dict[str, Any]) -> int:
    """UPDATE the job (`job_values`: job_id, to_status, to_reserved, at) and INSERT its Event
    (`event`: every column but the id) in one statement; the Event's id."""
    params = dict(job_values)
    params.update({f"e_{key}": value for key, value in event.items()})
    return db.session.connection().execute(_move_statement(), params).scalar_one()


def next_order_id() -> Function:
    """The next order id from the dispatches' sequence, for a read the request makes anyway
    (request_reads.py): the order's id is then known before its INSERT, so its Event can be
    written in the same statement (`dispatch_all`). A refused request leaves a gap in the
    ids, as any rolled-back INSERT does."""
    return func.nextval(func.pg_get_serial_sequence("dispatches", "id"))


@functools.cache
def _dispatch_statement() -> TextClause:
    orders = writable(Dispatch.__table__)
    places = writable(Assignment.__table__, "dispatch_id", "position")
    events = writable(Event.__table__)
    id_type = Dispatch.__table__.c.id.type.compile(dialect=_DIALECT)
    sql = f"""
WITH {_RESERVE}, d AS (
  INSERT INTO dispatches (id, {", ".join(c.name for c in orders)})
  SELECT CAST(:order_id AS {id_type}), {", ".join(_cast("o_" + c.key, c) for c in orders)}
  FROM g
  RETURNING id
), p AS (
  {_insert_places(places)}
), j AS (
  UPDATE micro_jobs SET status = :to_status, reserved_cents = :to_reserved, updated_at = :at
  FROM d
  WHERE micro_jobs.id = :job_id
  RETURNING micro_jobs.id
)
INSERT INTO events ({", ".join(c.name for c in events)})
SELECT {", ".join(_cast("e_" + c.key, c) for c in events)} FROM j
RETURNING id"""
    table = MicroJob.__table__
    return text(sql).bindparams(
        *_reserve_params(),
        bindparam("order_id", type_=Dispatch.__table__.c.id.type),
        *_params("o_", orders),
        *_params("p_", places),
        bindparam("to_status", type_=table.c.status.type),
        bindparam("to_reserved", type_=table.c.reserved_cents.type),
        bindparam("at", type_=table.c.updated_at.type),
        bindparam("job_id", type_=table.c.id.type),
        *_params("e_", events),
    )


def dispatch_all(order_id: int, goal_id: int, cents: int, order: dict[str, Any],
                 place: dict[str, Any], count: int, job_values: dict[str, Any],
                 event: dict[str, Any], *, commit: bool = False) -> int | None:  # fmt: skip
    """`insert_order` (with the order's id given: `next_order_id`) and `move_job` in one
    statement, every write conditioned on the goal's guarded reservation. Returns the
    Event's id, or None when the goal had no room (then nothing was written). `commit`:
    the transaction ends with it, its COMMIT in the same round trip (`scalar_and_commit`)."""
    params = {"order_id": order_id, "cents": cents, "goal_id": goal_id, "count": count}
    params.update(job_values)
    params.update({f"o_{key}": value for key, value in order.items()})
    params.update({f"p_{key}": value for key, value in place.items()})
    params.update({f"e_{key}": value for key, value in event.items()})
    if commit:
        return scalar_and_commit(_dispatch_statement(), params)
    return db.session.connection().execute(_dispatch_statement(), params).scalar()


def scalar_and_commit(statement: TextClause, params: dict[str, Any]) -> Any:
    """Run the transaction's last statement and its COMMIT in one round trip (psycopg's
    pipeline mode); the first value of its first row.

    Why (issue 12, idle latency): on an idle server each round trip costs a dispatch request
    about half a millisecond, and the COMMIT was one of three. The session's own commit,
    which the caller still makes, then finds the connection out of its transaction and
    sends nothing (psycopg skips a COMMIT outside one), and runs its hooks as ever. With
    unflushed changes in the session (its flush would come after this COMMIT, in a
    transaction of its own) the statement runs alone and the session's commit commits.
    Whatever listens to the engine's statements sees this one (with no execution context);
    errors come out as SQLAlchemy's, as from `Connection.execute`."""
    session = db.session()
    connection = session.connection()
    if session.new or session.dirty or session.deleted:
        return connection.execute(statement, params).scalar()
    dialect = connection.dialect
    compiled = _compiled(statement, dialect)
    values = compiled.construct_params(params)
    processors = compiled._bind_processors
    args = tuple(
        processors[key](values[key]) if key in processors else values[key]
        for key in compiled.positiontup or ()
    )
    sql = compiled.string
    events = connection.dispatch
    raw = connection.connection.driver_connection
    cursor = raw.cursor()
    try:
        if events.before_cursor_execute:
            events.before_cursor_execute(connection, cursor, sql, args, None, False)
        with raw.pipeline():
            cursor.execute(sql, args)
            raw.commit()
        row = cursor.fetchone()
        if events.after_cursor_execute:
            events.after_cursor_execute(connection, cursor, sql, args, None, False)
    except dialect.loaded_dbapi.Error as exc:
        disconnect = dialect.is_disconnect(exc, raw, cursor)
        if disconnect:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql, args, exc, dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect, dialect=dialect,
        ) from exc  # fmt: skip
    finally:
        cursor.close()
    return row[0] if row else None


@functools.cache
def _compiled(statement: TextClause, dialect: Dialect) -> Compiled:
    """The statement compiled for the engine's dialect once (its SQL and parameter order)."""
    return statement.compile(dialect=dialect)
