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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from dispatcher.extensions import db, on_sqlite_connect

_EXT_KEY = "dispatcher.intake_engine"
_lock = threading.Lock()


def intake_connection() -> Connection:
    """A connection of intake's engine, for a single statement: `with intake_connection() as
    conn: conn.execute(...)`."""
    return intake_engine().connect()


def fetch_all(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run one statement in the driver's own SQL on a pooled connection of intake's engine,
    committed as it returns; its rows.

    Why: the group's INSERT needs none of what a SQLAlchemy `Connection` adds around the
    driver's cursor (execution context, result metadata, events), which cost the web
    process about a fifth of its CPU per webhook on PostgreSQL (`bench/profile_intake.py`).
    Errors come out as through a `Connection`: the driver's wrapped in SQLAlchemy's classes
    (`IntegrityError`, `OperationalError`), and a connection the database dropped is thrown
    away with every other idle one of the pool, so the next statements reconnect. While
    anything listens to the engine's statements (tracing, a test counting them), it goes
    through a `Connection`, so they see it."""
    engine = intake_engine()
    if engine.dispatch.before_cursor_execute or engine.dispatch.after_cursor_execute:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.exec_driver_sql(statement, params)]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(statement, params)
            return cursor.fetchall()
        except engine.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(engine, raw, cursor, statement, params, exc) from exc
        finally:
            cursor.close()
    finally:
        raw.close()  # back to the pool (or closed, if invalidated)


def _wrapped(
    engine: Engine,
    raw: PoolProxiedConnection,
    cursor: Any,
    statement: str,
    params: tuple[Any, ...],
    exc: Exception,
) -> DBAPIError:
    """SQLAlchemy's exception for a driver error, after what its `Connection` does on a
    disconnect: this connection invalidated and the pool's idle ones discarded."""
    dialect = engine.dialect
    disconnect = dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
    if disconnect:
        raw.invalidate(exc)
        engine.dispose()  # a new pool: a database restart dropped the idle ones too
    return DBAPIError.instance(
        statement,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=disconnect,
        dialect=dialect,
    )


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
    # in autocommit no transaction is ever left open: nothing to roll back on return
    options.update(isolation_level="AUTOCOMMIT", pool_pre_ping=False, pool_reset_on_return=None)
    intake = create_engine(engine.url, **options)
    on_sqlite_connect(intake)
    event.listen(engine, "engine_disposed", lambda _engine: intake.dispose())
    return intake
