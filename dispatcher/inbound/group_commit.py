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
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite

from dispatcher.extensions import db
from dispatcher.inbound.intake_connection import intake_connection
from dispatcher.inbound.queueing import enqueue_apply_many_quietly
from dispatcher.models import InboundEvent
from dispatcher.write_gate import write_gate

_EXT_KEY = "dispatcher.group_commit"
_TABLE = InboundEvent.__table__
#: rows per statement: a burst larger than this is stored in several groups in turn
MAX_GROUP = 64


@dataclass(eq=False)
class _Waiting:
    row: dict[str, Any]
    enqueue: bool
    inbound_id: int | None = None  # None once done: a duplicate of a stored event
    error: BaseException | None = None
    done: bool = False


@dataclass(eq=False)
class _Lane:
    """One app's writer turn and its waiting rows (per process: threads share it)."""

    writer: threading.Lock = field(default_factory=threading.Lock)
    mutex: threading.Lock = field(default_factory=threading.Lock)
    waiting: list[_Waiting] = field(default_factory=list)


_lanes_lock = threading.Lock()


def store(row: dict[str, Any], *, enqueue: bool) -> int | None:
    """Insert one inbound row with whatever else is waiting and commit; its id, or None if
    the same (connection, event id) was already stored. With `enqueue`, its apply step is
    queued after the commit (if Redis is down, the reconciler queues it later). Raises what
    storing the row raised."""
    me = _Waiting(row, enqueue)
    lane = _lane(current_app)
    with lane.mutex:
        lane.waiting.append(me)
    with lane.writer:
        if not me.done:  # no writer took it in its group: this thread writes the next group
            with lane.mutex:
                group, lane.waiting = lane.waiting[:MAX_GROUP], lane.waiting[MAX_GROUP:]
            _write(group)
    if me.error is not None:
        raise me.error
    return me.inbound_id


def _lane(app: Flask) -> _Lane:
    lane = app.extensions.get(_EXT_KEY)
    if lane is None:
        with _lanes_lock:
            lane = app.extensions.setdefault(_EXT_KEY, _Lane())
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
            w.done = True


def _insert(group: Sequence[_Waiting]) -> None:
    """One INSERT of the group's rows that skips (connection, event id) pairs already stored,
    committed before it returns; each stored row's id is set on its waiter."""
    statement = _INSERTS[db.engine.dialect.name]
    with write_gate(), intake_connection() as conn:  # autocommit: committed as it returns
        stored = conn.execute(statement, [w.row for w in group]).all()
    ids = {(r.connection_id, r.event_id): r.id for r in stored}
    # the first of two deliveries in one group gets the row; the second is a duplicate
    for w in group:
        w.inbound_id = ids.pop((w.row["connection_id"], w.row["event_id"]), None)


def _insert_ignoring_duplicates(module: ModuleType) -> Insert:
    return (
        module.insert(_TABLE)
        .on_conflict_do_nothing(index_elements=["connection_id", "event_id"])
        .returning(_TABLE.c.id, _TABLE.c.connection_id, _TABLE.c.event_id)
    )


#: built once (SQLAlchemy caches each one's compiled form): by dialect name
_INSERTS = {"postgresql": _insert_ignoring_duplicates(postgresql),
            "sqlite": _insert_ignoring_duplicates(sqlite)}  # fmt: skip
