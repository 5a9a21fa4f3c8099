"""Extension objects, created unbound; `create_app` binds them with `init_app`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
api = Api()


def enforce_sqlite_foreign_keys(app) -> None:
    """SQLite ignores foreign keys (and their ON DELETE rules) unless each connection asks:
    turn them on for every connection of this app's engine, as PostgreSQL always has them;
    and make its commits durable and cheap (`_sqlite_pragmas`)."""
    with app.app_context():
        on_sqlite_connect(db.engine)


def on_sqlite_connect(engine) -> None:
    """Give every new connection of a SQLite engine the pragmas below (no-op elsewhere)."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys on. WAL, so a commit appends to one log instead of creating and deleting
    a journal (and readers never block the writer); synchronous=FULL, so every commit is on
    disk before it returns: a webhook answered 2xx survives a power cut (NORMAL could lose
    the last ones)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()
