"""Connections: each owner's channels, and the one place adapters are built from them.

An adapter gets its credentials per connection, never from global settings (DESIGN rule 7).
`adapter_for_connection` builds it once per process and rebuilds it when the connection
changes (its `version`). The rules that guard a connection (what may be deleted) live here,
so the settings page and the API cannot disagree.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select
from sqlalchemy import update as sql_update

from adapters.base import Adapter, AdapterRegistry
from dispatcher import secretbox
from dispatcher.errors import AdapterError, DispatcherError, NotFound, Unsupported
from dispatcher.extensions import db
from dispatcher.inbound.intake_connection import intake_connection
from dispatcher.models import Connection, Dispatch, InboundEvent, MicroJob
from dispatcher.models._base import utcnow
from dispatcher.scoping import get_owned, owned

log = logging.getLogger(__name__)

CACHE = "dispatcher.connection_adapters"


class ConnectionInUse(DispatcherError):
    """Deleting a connection that jobs with money held still use."""


def registry() -> AdapterRegistry:
    return current_app.extensions["dispatcher.adapters"]


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def webhook_path(connection: Connection) -> str:
    """The path a platform posts this connection's webhooks to."""
    return f"/webhooks/{connection.adapter}/{connection.webhook_path}"


def webhook_url(connection: Connection) -> str:
    base = current_app.config["SETTINGS"].public_base_url.rstrip("/")
    return base + webhook_path(connection)


def for_owner(owner_id: int) -> list[Connection]:
    return list(db.session.scalars(owned(Connection, owner_id).order_by(Connection.id)))


def get(connection_id: Any, owner_id: int) -> Connection:
    """The owner's connection, or NotFound (a foreign one looks like a missing one)."""
    return get_owned(Connection, connection_id, owner_id)


def for_adapter(owner_id: int, adapter_name: str) -> Connection | None:
    """The owner's first connection of that adapter (for a job that names only a channel)."""
    return db.session.scalars(
        owned(Connection, owner_id)
        .where(Connection.adapter == adapter_name)
        .order_by(Connection.id)
    ).first()


def create(
    owner_id: int,
    adapter_name: str,
    label: str,
    credentials: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Connection, str]:
    """Store a new connection; returns it and its webhook secret (shown once, then never)."""
    if adapter_name not in registry():
        raise ValueError(f"no channel named {adapter_name!r}")
    cls = registry().classes()[adapter_name]
    missing = [f for f in cls.credential_fields if not (credentials or {}).get(f)]
    if missing:
        raise ValueError(f"{', '.join(missing)} required")
    cls.validate_connection(registry().settings, dict(credentials or {}), dict(options or {}))
    secret = new_webhook_secret()
    connection = Connection(
        owner_id=owner_id,
        adapter=adapter_name,
        label=label.strip() or cls.title,
        options={k: v for k, v in dict(options or {}).items() if k in cls.option_fields},
        webhook_path=secrets.token_urlsafe(24),
    )
    connection.credentials = {k: v for k, v in dict(credentials or {}).items() if v}
    connection.webhook_secret = secret
    db.session.add(connection)
    db.session.flush()
    return connection, secret


def rotate_secret(connection: Connection) -> str:
    """A new webhook signing secret (shown once); the old one stops verifying at once."""
    secret = new_webhook_secret()
    connection.webhook_secret = secret
    _touch(connection)
    return secret


def check(connection: Connection) -> tuple[bool, str]:
    """ "Test connection": the adapter's harmless call with this connection's credentials.

    The outcome is recorded on the row; what the platform said is kept short and never
    contains the credentials (adapters do not echo them, and errors carry only the body)."""
    adapter = adapter_for_connection(connection.id)
    try:
        message = adapter.check() or "ok"
        ok = True
        _register_webhook(adapter, connection)
    except Unsupported as exc:
        ok, message = True, str(exc)
    except AdapterError as exc:
        ok, message = False, str(exc)
    return _record(connection, ok, message)


def _record(connection: Connection, ok: bool, message: str) -> tuple[bool, str]:
    message = scrub(message, connection)[:500]
    connection.checked_at = utcnow()
    connection.check_ok = ok
    connection.check_message = message
    return ok, message


def _register_webhook(adapter: Adapter, connection: Connection) -> None:
    """Give the platform this connection's webhook URL and secret where its API allows.

    A platform that calls the URL back while registering (Trello's HEAD, Asana's
    handshake) must find the connection: it is committed first, and the handshake window
    (dispatcher/handshakes.py) is open only for the time of the call."""
    if not adapter.calls_back_on_register:
        with contextlib.suppress(Unsupported):
            adapter.register_webhook(webhook_url(connection), connection.webhook_secret)
        return
    from dispatcher import handshakes  # it builds on this module

    db.session.commit()
    handshakes.open_window(connection.id)
    try:
        with contextlib.suppress(Unsupported):
            adapter.register_webhook(webhook_url(connection), connection.webhook_secret)
    finally:
        handshakes.close_window(connection.id)


def sync_webhook(connection: Connection) -> None:
    """After a connect or a rotation: register the URL and secret now if the platform is
    reachable; if not, the failure is recorded and "Test connection" registers them later."""
    db.session.flush()
    try:
        _register_webhook(adapter_for_connection(connection.id), connection)
    except AdapterError as exc:
        _record(connection, False, f"webhook not registered yet: {exc}")


def scrub(text: str, connection: Connection) -> str:
    """`text` with every secret of the connection masked, for pages and logs."""
    for value in [*connection.credentials.values(), connection.webhook_secret]:
        if value and len(value) >= 4:
            text = text.replace(value, "••••••••")
    return text


def delete(connection: Connection) -> None:
    """Delete a connection, unless a job that uses it holds money (it must be settled first)."""
    held = db.session.scalar(
        select(func.count(MicroJob.id)).where(
            MicroJob.connection_id == connection.id, MicroJob.reserved_cents > 0
        )
    )
    if held:
        raise ConnectionInUse(
            f"{held} job{'s' if held != 1 else ''} with money held use{'s' if held == 1 else ''} "
            f"“{connection.label}”: cancel or finish them first"
        )
    current_app.extensions.get(CACHE, {}).pop(connection.id, None)
    # what the foreign keys say (ON DELETE SET NULL), also where SQLite does not enforce them
    for model in (MicroJob, Dispatch, InboundEvent):
        db.session.execute(
            sql_update(model)
            .where(model.connection_id == connection.id)
            .values(connection_id=None)
            .execution_options(synchronize_session="fetch")
        )
    db.session.delete(connection)


def bind(job: MicroJob, connection_id: Any = None) -> Connection | None:
    """Point a delegated job at one of its owner's connections and copy the adapter's name
    into `job.channel`. A job that names only a channel gets the owner's connection of that
    adapter, if any (a dispatch without one is refused: `require`). Returns the connection
    (the session holds rows weakly: a caller that keeps it need not load it again)."""
    if job.mode != "delegate":
        return None
    if connection_id is not None:
        connection = get(connection_id, job.owner_id)
    elif job.connection_id is not None:
        connection = db.session.get(Connection, job.connection_id)
        if connection is not None and (
            connection.owner_id != job.owner_id or connection.adapter != job.channel
        ):
            connection = None
    else:
        connection = None
    if connection is None and job.channel:
        connection = for_adapter(job.owner_id, job.channel)
    # set only what changes: an unchanged job stays clean, so a dispatch's commit has no
    # flush to run (issue 12)
    connection_id = connection.id if connection is not None else None
    if job.connection_id != connection_id:
        job.connection_id = connection_id
    if connection is not None and job.channel != connection.adapter:
        job.channel = connection.adapter
    return connection


def require(job: MicroJob) -> Connection:
    """The job's connection; NotFound with a clear reason when it has none (or not theirs)."""
    connection = bind(job)
    if job.connection_id is None:
        raise NotFound(
            f"connect a {job.channel or 'channel'} account first (Settings → Connections)"
        )
    return connection or db.session.get(Connection, job.connection_id)


def adapter_for_connection(connection_id: int) -> Adapter:
    """The adapter for one connection, with its credentials and options; cached per process
    and rebuilt when the connection changes."""
    connection = db.session.get(Connection, connection_id)
    if connection is None:
        raise NotFound(f"connection {connection_id} not found")
    cache: dict[int, tuple[tuple[int, str], Adapter]] = current_app.extensions.setdefault(CACHE, {})
    hit = cache.get(connection.id)
    cls = registry().classes()[connection.adapter]
    # the path too: SQLite may give a deleted connection's id to the next one, at version 1
    stamp = (connection.version, connection.webhook_path)
    if hit is not None and hit[0] == stamp and type(hit[1]) is cls:
        return hit[1]
    credentials = dict(connection.credentials)
    credentials["webhook_secret"] = connection.webhook_secret
    adapter = cls(registry().settings, credentials=credentials, options=connection.options)
    adapter.connection_id = connection.id
    adapter.webhook_url = webhook_url(connection)
    if hit is not None:
        hit[1].session.close()
    cache[connection.id] = (stamp, adapter)
    return adapter


def adapter_for_webhook(adapter_name: str, path: str) -> Adapter | None:
    """The adapter of the connection that owns /webhooks/<adapter_name>/<path>, or None.

    Webhook intake's lookup: one light query of the row's id and version on every request
    (no ORM object, no decryption), then the adapter cached by `adapter_for_connection` if
    it was built from that same version and path. Every change to a connection's secrets or
    options bumps its version (`_touch`), and a deleted one has no row: both take effect on
    the very next webhook, in every process, without any cache to invalidate."""
    with intake_connection() as conn:  # not the session: nothing to flush, expire or remove
        row = conn.execute(_BY_WEBHOOK, {"path": path, "adapter": adapter_name}).first()
    if row is None:
        return None
    hit = current_app.extensions.get(CACHE, {}).get(row.id)
    if (
        hit is not None
        and hit[0] == (row.version, path)
        and type(hit[1]) is registry().classes().get(adapter_name)
    ):
        return hit[1]
    return adapter_for_connection(row.id)


_TABLE = Connection.__table__
#: built once: intake runs it on every webhook
_BY_WEBHOOK = select(_TABLE.c.id, _TABLE.c.version).where(
    _TABLE.c.webhook_path == bindparam("path"), _TABLE.c.adapter == bindparam("adapter")
)


def _touch(connection: Connection) -> None:
    from dispatcher.dispatch import carried  # it builds on this module

    connection.version = (connection.version or 1) + 1
    connection.updated_at = utcnow()
    carried.changed(connection)  # before the commit: no token is sent with what it had


def change(
    connection: Connection,
    *,
    label: str | None = None,
    credentials: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Change a connection; blank credential fields keep what is stored (never shown again)."""
    cls = registry().classes()[connection.adapter]
    if credentials or options is not None:
        merged_credentials = {
            **connection.credentials,
            **{k: v for k, v in (credentials or {}).items() if v},
        }
        cls.validate_connection(
            registry().settings,
            merged_credentials,
            connection.options if options is None else dict(options),
        )
    if label is not None and label.strip():
        connection.label = label.strip()
    if credentials:
        merged = dict(connection.credentials)
        merged.update({k: v for k, v in credentials.items() if v and k in cls.credential_fields})
        connection.credentials = merged
    if options is not None:
        connection.options = {k: v for k, v in options.items() if k in cls.option_fields}
    _touch(connection)


def rekey_all() -> int:
    """Re-encrypt every connection's secrets under the first configured key (after a new key
    was put first in DISPATCHER_ENCRYPTION_KEY), so the old key can then be dropped."""
    rows = list(db.session.scalars(select(Connection).order_by(Connection.id)))
    for row in rows:
        if row.credentials_sealed:
            row.credentials_sealed = secretbox.rotate(row.credentials_sealed)
        if row.webhook_secret_sealed:
            row.webhook_secret_sealed = secretbox.rotate(row.webhook_secret_sealed)
    db.session.commit()
    return len(rows)
