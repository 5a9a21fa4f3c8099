"""Issue 12, webhook intake's own engine (autocommit, no liveness ping): as durable as the
app's engine, disposed with it, and a connection the database dropped costs one webhook,
not every one after it."""

from __future__ import annotations

import pytest
from dispatch.helpers import hook_url, signed_webhook
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from dispatcher.extensions import db
from dispatcher.inbound.intake_connection import fetch_all, intake_engine
from dispatcher.models import InboundEvent


def post(client, msg_id: str):
    headers, body = signed_webhook("order.taken", "ord_1", msg_id=msg_id)
    return client.post(hook_url(), data=body, headers=headers)


def test_on_sqlite_its_connections_are_durable_and_keep_foreign_keys(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's per-connection pragmas")
    with intake_engine().connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_each_statement_commits_on_its_own(app, owner, client):
    assert post(client, "msg_1").status_code == 202
    with intake_engine().connect() as conn:  # another connection sees it at once
        assert conn.execute(text("SELECT count(*) FROM inbound_events")).scalar() == 1
        driver = conn.connection.driver_connection
        if db.engine.dialect.name == "sqlite":
            assert driver.isolation_level is None  # pysqlite's autocommit
        else:
            assert driver.autocommit is True


def test_it_is_disposed_with_the_apps_engine(app, owner, client):
    assert post(client, "msg_1").status_code == 202
    pool = intake_engine().pool
    assert pool.checkedin() >= 1  # a connection waits in its pool
    db.engine.dispose()
    assert intake_engine().pool is not pool or pool.checkedin() == 0


def test_a_connection_the_database_dropped_fails_one_webhook_then_intake_recovers(
    app, owner, client
):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("needs a server that can drop a connection")
    assert post(client, "msg_1").status_code == 202
    db.session.commit()
    with db.engine.connect() as admin:  # what a database restart does to idle connections
        dropped = admin.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert dropped >= 1
    answers = []
    for n in range(2, 6):
        try:  # under test the app raises what gunicorn would answer as a 500
            answers.append(post(client, f"msg_{n}").status_code)
        except OperationalError:
            answers.append(500)
    assert answers.count(202) >= len(answers) - 2  # at most the stale look-up and insert fail
    assert answers[-1] == 202
    db.session.rollback()
    assert db.session.query(InboundEvent).count() == 1 + answers.count(202)


def test_fetch_all_raises_sqlalchemys_error_and_its_connection_stays_usable(app):
    """The group's INSERT runs on the driver's cursor: a refused statement still comes out as
    SQLAlchemy's exception (group_commit hands it to the row's request), and the pooled
    connection it used is not left in a failed state."""
    with pytest.raises(DBAPIError) as raised:
        fetch_all("SELECT id FROM no_such_table", ())
    assert raised.value.statement == "SELECT id FROM no_such_table"
    assert not raised.value.connection_invalidated
    for _ in range(intake_engine().pool.size() + 1):  # whichever pooled connection comes back
        assert fetch_all("SELECT 1", ()) == [(1,)]
