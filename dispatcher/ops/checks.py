"""The readiness checks, shared by /readyz and `dispatcher check`: one list, one meaning."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from dispatcher.config import EMBEDDED_REDIS
from dispatcher.extensions import db
from dispatcher.redis_urls import connect_url

#: how long a readiness probe waits on Redis before calling it unreachable
REDIS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        db.session.rollback()
        return Check("database", False, f"unreachable: {_first_line(exc)}")
    finally:
        db.session.remove()
    return Check("database", True, db.engine.url.render_as_string(hide_password=True))


def check_redis(app: Flask) -> Check:
    try:
        probe_redis(app).ping()
    except RedisError as exc:
        return Check("redis", False, f"unreachable: {_first_line(exc)}")
    url = app.config["SETTINGS"].redis_url
    return Check("redis", True, "embedded" if url == EMBEDDED_REDIS else _mask(url))


def check_migrations(app: Flask) -> Check:
    """The database is at the head revision the installed code ships."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(app.extensions["migrate"].directory)
    heads = set(script.get_heads())
    try:
        with db.engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        return Check("migrations", False, f"cannot read the revision: {_first_line(exc)}")
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        return Check("migrations", False, f"database at {have}, code at {', '.join(sorted(heads))}")
    return Check("migrations", True, ", ".join(sorted(heads)))


def check_alive_here(app: Flask) -> Check:
    """A worker or scheduler of this host is alive by its key in Redis (for the container
    health checks: a hung process stops refreshing it)."""
    import socket

    from rq import Worker

    from dispatcher.dispatch import liveness

    host = socket.gethostname()
    try:
        conn = probe_redis(app)
        if liveness.is_alive(conn, scheduler_alive_name(host)):
            return Check("alive", True, f"scheduler on {host}")
        workers = [w.name for w in Worker.all(connection=conn) if w.hostname == host]
    except RedisError as exc:
        return Check("alive", False, f"redis unreachable: {_first_line(exc)}")
    alive = [name for name in workers if liveness.is_alive(conn, name)]
    if alive:
        return Check("alive", True, f"worker {alive[0]} on {host}")
    return Check("alive", False, f"no live worker or scheduler on {host}")


def scheduler_alive_name(host: str) -> str:
    return f"scheduler@{host}"


def check_settings(app: Flask) -> list[Check]:
    """What the settings say, secrets masked: the first thing to read when something is off."""
    settings = app.config["SETTINGS"]
    return [
        Check("instance folder", settings.instance_path.is_dir(), str(settings.instance_path)),
        Check("public URL", True, settings.public_base_url),
        Check("log format", True, settings.log_format),
        Check("metrics", True, "token" if settings.metrics_token else "loopback only"),
    ]


def everything(app: Flask) -> list[Check]:
    """`dispatcher check`: the settings, then what /readyz asks."""
    return [*check_settings(app), *readiness(app)]


def readiness(app: Flask) -> list[Check]:
    """Database, Redis and migrations: what a process needs before it takes traffic."""
    database = check_database()
    checks = [database, check_redis(app)]
    if database.ok:
        checks.append(check_migrations(app))
    return checks


def probe_redis(app: Flask) -> Redis:
    """A client with short timeouts (the app's own waits as long as a job may need)."""
    from dispatcher.queues import redis_connection

    settings = app.config["SETTINGS"]
    if settings.redis_url == EMBEDDED_REDIS:
        return redis_connection(app)
    client = app.extensions.get("dispatcher.redis_probe")
    if client is None:
        client = connect_url(
            settings.redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
        )
        app.extensions["dispatcher.redis_probe"] = client
    return client


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _mask(url: str) -> str:
    """The URL without its password, for tables and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
