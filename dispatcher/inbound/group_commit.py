"""Webhook rows stored in groups: one transaction, one commit and one Redis round trip for
every webhook waiting in this process at that moment (group commit).

Why: under a burst each webhook paid a commit of its own (an fsync on SQLite, a round trip
and a WAL flush on PostgreSQL), its own Redis round trips, and a turn at the single SQLite
writer; the senders' threads spent most of their wall time queueing for the writer
(`bench/profile_processes.py --only web`). Here the first request thread that finds no
writer at work becomes the writer: it takes every row that is waiting, its own included,
inserts them in one statement, commits, queues their apply steps in one pipeline, and hands
each waiting thread its answer. Threads that arrive meanwhile wait for the next group, which
grows exactly when the writer is slow, so there is no timer and a lone webhook waits for
nobody.

Durable as before: a request learns its row's id only after the transaction holding the
row has committed, so no 2xx is sent for a row that a crash could lose. A redelivery (same
connection and event id) is found by the database's unique constraint, inside a group or
across groups, and answered as a duplicate. A group that fails as a whole (a row the
database refuses) is stored again row by row, so one bad row fails only its own request.

Each row carries the version and webhook path of the connection its request was verified
against (`webhook_lookup`, which remembers them per process), and the INSERT stores it only
if the connection still has them: a rotated secret, changed options or a deleted connection
turn the row away in the same statement, and its request looks the connection up afresh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Dialect

from dispatcher.extensions import db
from dispatcher.inbound.intake_connection import fetch_all, intake_engine
from dispatcher.inbound.queueing import enqueue_apply_many_quietly
from dispatcher.models import Connection, InboundEvent
from dispatcher.models._base import utcnow
from dispatcher.write_gate import write_gate

_EXT_KEY = "dispatcher.group_commit"
_TABLE = InboundEvent.__table__
#: rows per statement: a burst larger than this is stored in several groups in turn
MAX_GROUP = 64


@dataclass(eq=False)
class _Waiting:
    row: dict[str, Any]
    enqueue: bool
    #: (version, webhook path) the connection must still have for the row to be stored
    guard: tuple[int, str]
    inbound_id: int | None = None  # None once done: a duplicate, or the connection changed
    error: BaseException | None = None
    taken: bool = False  # in a writer's group (set under the lane's mutex)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass(eq=False)
class _Lane:
    """One app's writer turns and its waiting rows (per process: threads share it)."""

    writers: int
    writer: threading.Semaphore = field(init=False)
    mutex: threading.Lock = field(default_factory=threading.Lock)
    waiting: list[_Waiting] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writer = threading.Semaphore(self.writers)

    @contextmanager
    def hold_all(self) -> Iterator[None]:
        """Every writer turn, for the block: rows wait (a test forms a group so)."""
        for _ in range(self.writers):
            self.writer.acquire()
        try:
            yield
        finally:
            for _ in range(self.writers):
                self.writer.release()


#: groups written at once per process. SQLite has one writer: a second group would only
#: queue for its lock. PostgreSQL takes concurrent inserts: one group at a time per process
#: left the others waiting out its two round trips (the INSERT, then Redis), which a busy
#: host's scheduler stretches, while the floor's eight threads each had their own.
WRITERS = {"sqlite": 1}
DEFAULT_WRITERS = 2


_lanes_lock = threading.Lock()


def store(row: dict[str, Any], *, enqueue: bool, guard: tuple[int, str]) -> int | None:
    """Insert one inbound row with whatever else is waiting and commit; its id, or None if
    the same (connection, event id) was already stored or the row's connection no longer
    has the (version, webhook path) in `guard`. With `enqueue`, its apply step is queued
    after the commit (if Redis is down, the reconciler queues it later). Raises what storing
    the row raised."""
    me = _Waiting(row, enqueue, guard)
    lane = _lane(current_app)
    with lane.mutex:
        lane.waiting.append(me)
    with lane.writer:
        with lane.mutex:
            group: list[_Waiting] = []
            if not me.taken:  # no writer took it in its group: this thread writes the next
                group, lane.waiting = lane.waiting[:MAX_GROUP], lane.waiting[MAX_GROUP:]
                for w in group:
                    w.taken = True
        if group:
            _write(group)
    me.done.wait()  # at once, unless a concurrent writer (not on SQLite) has the row
    if me.error is not None:
        raise me.error
    return me.inbound_id


def _lane(app: Flask) -> _Lane:
    lane = app.extensions.get(_EXT_KEY)
    if lane is None:
        with _lanes_lock:
            writers = WRITERS.get(db.engine.dialect.name, DEFAULT_WRITERS)
            lane = app.extensions.setdefault(_EXT_KEY, _Lane(writers))
    return lane


def _write(group: list[_Waiting]) -> None:
    """Store the group and settle every member: an id, a duplicate, or an error."""
    try:
        try:
            _insert(group)
        except Exception:
            if len(group) == 1:
                raise
            for one in group:  # one row the database refuses must not fail the others
                try:
                    _insert([one])
                except Exception as exc:  # noqa: BLE001 - handed to that row's own request
                    one.error = exc
        enqueue_apply_many_quietly(
            [w.inbound_id for w in group if w.enqueue and w.inbound_id is not None]
        )
    except BaseException as exc:  # noqa: BLE001 - each request raises it as its own
        for w in group:
            if w.error is None and w.inbound_id is None:
                w.error = exc
    finally:
        for w in group:
            w.done.set()


def _insert(group: Sequence[_Waiting]) -> None:
    """One INSERT of the group's rows that skips (connection, event id) pairs already stored
    and rows whose connection changed, committed before it returns; each stored row's id is
    set on its waiter."""
    dialect = intake_engine().dialect
    params: list[Any] = []
    for w in group:
        params.extend(_params(w, dialect))
    # the driver's own statement: no compiling, and one shape per group size
    statement = _statement(dialect.name, dialect.paramstyle, len(group))
    with write_gate():
        stored = fetch_all(statement, tuple(params))  # autocommit: committed as it returns
    ids = {(connection_id, event_id): id_ for id_, connection_id, event_id in stored}
    # the first of two deliveries in one group gets the row; the second is a duplicate
    for w in group:
        w.inbound_id = ids.pop((w.row["connection_id"], w.row["event_id"]), None)


_TABLE = InboundEvent.__table__
#: the row's columns, in the order of each VALUES tuple (then the guard's version and path)
_COLUMNS = ("adapter", "connection_id", "event_id", "headers", "body", "status", "error",
            "received_at")  # fmt: skip


def _params(w: _Waiting, dialect: Dialect) -> list[Any]:
    row = w.row
    values = [row["adapter"], row["connection_id"], row["event_id"], row["headers"],
              row["body"], row["status"], row["error"], utcnow(), *w.guard]  # fmt: skip
    for index in (3, 7):  # the JSON and the UTC datetime, as SQLAlchemy writes them
        processor = _processor(_COLUMNS[index], dialect)
        if processor is not None:
            values[index] = processor(values[index])
    return values


_processors: dict[tuple[str, str], Any] = {}


def _processor(column: str, dialect: Dialect):
    key = (column, dialect.name)
    if key not in _processors:
        kind = _TABLE.c[column].type
        _processors[key] = kind.dialect_impl(dialect).bind_processor(dialect)
    return _processors[key]


_statements: dict[tuple[str, str, int], str] = {}
_WIDTH = len(_COLUMNS) + 2


def _marks(paramstyle: str, rows: int) -> str:
    """The VALUES tuples' placeholders in the driver's own style."""
    if paramstyle == "numeric_dollar":  # the engine's raw psycopg cursor (extensions.py)
        numbers = iter(range(1, rows * _WIDTH + 1))
        one = lambda: "(" + ", ".join(f"${next(numbers)}" for _ in range(_WIDTH)) + ")"  # noqa: E731
        return ", ".join(one() for _ in range(rows))
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}[paramstyle]
    return ", ".join(["(" + ", ".join([mark] * _WIDTH) + ")"] * rows)


def _statement(dialect_name: str, paramstyle: str, rows: int) -> str:
    """INSERT ... SELECT from the group's VALUES, joined to the connection each row names at
    the version and path it was verified against. VALUES columns are column1..column10 on
    both SQLite and PostgreSQL; the WHERE clause also tells SQLite that ON CONFLICT is the
    upsert, not a join's ON."""
    key = (dialect_name, paramstyle, rows)
    if key not in _statements:
        headers = "CAST(v.column4 AS JSON)" if dialect_name == "postgresql" else "v.column4"
        received = (
            "CAST(v.column8 AS TIMESTAMP WITH TIME ZONE)"
            if dialect_name == "postgresql"
            else "v.column8"
        )
        connections = Connection.__table__.name
        _statements[key] = (
            f"INSERT INTO {_TABLE.name} (adapter, connection_id, event_id, source, headers, "
            "body, status, error, attempts, received_at) "
            f"SELECT v.column1, v.column2, v.column3, 'webhook', {headers}, v.column5, "
            f"v.column6, v.column7, 0, {received} "
            f"FROM (VALUES {_marks(paramstyle, rows)}) AS v, {connections} AS c "
            "WHERE c.id = v.column2 AND c.version = v.column9 AND c.webhook_path = v.column10 "
            "AND c.adapter = v.column1 "
            "ON CONFLICT (connection_id, event_id) DO NOTHING "
            "RETURNING id, connection_id, event_id"
        )
    return _statements[key]
