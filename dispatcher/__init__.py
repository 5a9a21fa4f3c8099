"""Dispatcher: split a big goal into micro-jobs, delegate them, review what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: settings, database, Redis (lazily), adapters, blueprints.

    `config` overrides settings by name (see `Settings`), e.g. {"database_url": ...}.
    """
    from adapters.base import AdapterRegistry
    from dispatcher import queues
    from dispatcher.config import Settings
    from dispatcher.extensions import api, csrf, db, login_manager, migrate

    settings = Settings.from_env(config)
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        template_folder=str(ROOT / "templates"),
        static_folder="static",
    )
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.database_url),
        TESTING=settings.testing,
        WTF_CSRF_ENABLED=not settings.extra.get("disable_csrf", False),
        MAX_CONTENT_LENGTH=max(settings.webhook_max_bytes, 16 * 1024 * 1024),
        API_TITLE="Dispatcher API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        SESSION_COOKIE_SAMESITE="Lax",
    )

    db.init_app(app)
    if settings.database_url.startswith("sqlite"):
        from sqlalchemy import event

        with app.app_context():
            event.listen(db.engine, "connect", _sqlite_durable_wal)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    queues.init_app(app)
    app.extensions["dispatcher.adapters"] = AdapterRegistry(settings)

    from dispatcher import http_errors, models  # noqa: F401  (models register their tables)
    from dispatcher.api import init_api
    from dispatcher.inbound.webhooks import bp as webhooks_bp
    from dispatcher.web import register_blueprints

    api.init_app(app)
    init_api(app, api)
    csrf.exempt(webhooks_bp)
    app.register_blueprint(webhooks_bp)
    register_blueprints(app)
    http_errors.init_app(app)
    return app


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several processes share the file: wait for locks instead of failing at once.
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def _sqlite_durable_wal(dbapi_connection, connection_record) -> None:
    """WAL, so a commit appends to one log instead of creating and deleting a journal (and
    readers never block the writer); synchronous=FULL, so every commit is on disk before it
    returns: a webhook answered 2xx survives a power cut (NORMAL could lose the last ones)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()
