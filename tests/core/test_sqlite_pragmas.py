"""SQLite runs in WAL with durable commits (issue 12): a webhook answered 2xx is on disk."""

from __future__ import annotations

from sqlalchemy import text

from dispatcher import create_app
from dispatcher.extensions import db


def test_sqlite_file_database_uses_wal_and_full_sync(tmp_path, redis_url):
    app = create_app(
        {
            "instance_path": tmp_path / "instance",
            "database_url": f"sqlite:///{tmp_path / 'pragmas.db'}",
            "redis_url": redis_url,
            "testing": True,
        }
    )
    with app.app_context():
        with db.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        db.engine.dispose()
    # journal_mode=WAL is stored in the file: a plain connection sees it too
    import sqlite3

    with sqlite3.connect(tmp_path / "pragmas.db") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
