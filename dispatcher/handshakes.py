"""Webhook handshakes: when a connection may take its signing secret from its platform.

Asana hands a webhook's secret over in a set-up call to the target URL (``X-Hook-Secret``)
while Dispatcher's call creating the webhook is still in flight. That call is unauthenticated,
so it must never replace an established secret: a connection accepts one only in a short
window Dispatcher opens around its own registration (a Redis key with a time to live), or
while it holds no handshake secret yet. The secret is kept sealed with the connection's
credentials, under HOOK_SECRET, where the adapter's `verify` reads it.
"""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError

from adapters.base import HandshakeReply
from dispatcher.connections import _touch as touch
from dispatcher.models import Connection
from dispatcher.queues import redis_connection

#: the credentials key of a secret handed over by a handshake
HOOK_SECRET = "hook_secret"
_KEY = "dispatcher:handshake:{}"

log = logging.getLogger(__name__)


def open_window(connection_id: int) -> None:
    """Let the connection take a handshake for the next few seconds (WEBHOOK_HANDSHAKE_SECONDS)."""
    seconds = current_app.config["SETTINGS"].webhook_handshake_seconds
    try:
        redis_connection().set(_KEY.format(connection_id), "1", ex=max(1, seconds))
    except RedisError as exc:  # then only a connection without a secret takes one
        log.warning("handshake window for connection %s not opened: %s", connection_id, exc)


def close_window(connection_id: int) -> None:
    try:
        redis_connection().delete(_KEY.format(connection_id))
    except RedisError as exc:  # it closes by itself when its time runs out
        log.warning("handshake window for connection %s not closed: %s", connection_id, exc)


def expecting(connection: Connection) -> bool:
    """Whether a handshake may set this connection's secret now."""
    if not connection.credentials.get(HOOK_SECRET):
        return True
    try:
        return bool(redis_connection().exists(_KEY.format(connection.id)))
    except RedisError:
        return False  # no proof of a window: the established secret stays


def accept(connection: Connection, reply: HandshakeReply) -> bool:
    """Store the secret a handshake handed over, if the connection expects one; False when
    it must be refused (the caller answers 403 and stores nothing)."""
    if not reply.secret:
        return True
    if not expecting(connection):
        return False
    credentials = dict(connection.credentials)
    credentials[HOOK_SECRET] = reply.secret
    connection.credentials = credentials
    touch(connection)  # cached adapters are rebuilt with the new secret
    return True
