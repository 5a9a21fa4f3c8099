"""Webhook intake's own engine: the app's database in autocommit, without a liveness ping.

Why: intake runs two statements per webhook (the connection look-up, then the group's
INSERT). Through the app's engine each cost a check-out with its liveness ping, a BEGIN and
a COMMIT or ROLLBACK: on PostgreSQL, where each is a round trip and server CPU, eight round
trips for the two statements; in autocommit without the ping they are two (each statement its
own transaction, committed when it returns), as the bare floor does. Measured in-process
(`bench/profile_intake.py`): 1.94 -> 1.29 ms CPU per webhook on PostgreSQL, 1.18 -> 0.88 on
SQLite.

Without the ping, a connection left stale by a database restart fails one webhook (a 5xx
the platform retries); SQLAlchemy then drops every pooled connection of the engine, so the
next ones reconnect. The engine shares the app's settings (SQLite's pragmas included: WAL
and synchronous=FULL, so a returned INSERT is on disk) and is disposed with the app's.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app
from sqlalchemy import Connection, Engine, create_engine, event

from dispatcher.extensions import db, on_sqlite_connect

_EXT_KEY = "dispatcher.intake_engine"
_lock = threading.Lock()


def intake_connection() -> Connection:
    """A connection of intake's engine, for a single statement: `with intake_connection() as
    conn: conn.execute(...)`."""
    return intake_engine().connect()


def intake_engine() -> Engine:
    engine = db.engine
    cached: Engine | None = current_app.extensions.get(_EXT_KEY)
    if cached is not None and cached.url == engine.url:
        return cached
    with _lock:
        cached = current_app.extensions.get(_EXT_KEY)
        if cached is None or cached.url != engine.url:
            cached = current_app.extensions[_EXT_KEY] = _create(engine)
    return cached


def _create(engine: Engine) -> Engine:
    options: dict[str, Any] = dict(current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    options.update(isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    intake = create_engine(engine.url, **options)
    on_sqlite_connect(intake)
    event.listen(engine, "engine_disposed", lambda _engine: intake.dispose())
    return intake
