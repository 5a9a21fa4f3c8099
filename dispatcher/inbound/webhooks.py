"""POST /webhooks/<adapter>/<connection path>: verify, store, acknowledge, then apply
(DESIGN rule 4). Each connection has its own unguessable path and signing secret, so one
owner's secret never verifies another owner's events.

Answers, for senders and for whoever reads the logs:
- 202 stored and queued for applying (200 for an adapter whose sender wants exactly that:
  `Adapter.accepted_status`, Slack's interactivity callbacks);
- 200 a duplicate of an event already stored (a no-op; the apply step is queued again in
  case the first enqueue was lost), or an authentic event of a type we do not use (stored
  as ``ignored``: a sender that sees errors retries and may switch the endpoint off);
- 400 malformed body (stored as ``invalid`` for inspection; a redelivery gets the same 400);
- 401 bad signature, or timestamp outside the window (the adapter checks both, the signature
  in constant time, on the raw bytes before parsing; nothing is stored);
- 200 a platform's handshake echoed (Asana's ``X-Hook-Secret``: its secret stored while the
  connection expects one, dispatcher/handshakes.py), or a HEAD check of a known URL (Trello
  checks the URL so before creating a webhook); 403 a handshake for a connection that already
  has its secret, outside the window Dispatcher opens when it registers the webhook;
- 404 no such adapter or connection, or it takes no webhooks; 410 the old per-adapter URL
  (every connection has its own now); 413 body larger than webhook_max_bytes (read no
  further than the limit).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import IO, Any

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.wsgi import get_content_length, get_input_stream

from adapters.base import Capability, EventKind, HandshakeReply
from adapters.teammate import PAGE_HEADER
from dispatcher import handshakes
from dispatcher.connections import adapter_for_webhook
from dispatcher.errors import PayloadError, SignatureError, Unsupported
from dispatcher.extensions import db
from dispatcher.http_errors import problem
from dispatcher.inbound import group_commit, webhook_lookup
from dispatcher.inbound.queueing import enqueue_apply_quietly
from dispatcher.models import Connection, InboundEvent
from dispatcher.ops import metrics

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/<adapter_name>")
@metrics.count_webhook
def receive_unscoped(adapter_name: str):
    """The per-adapter URL of old: every connection has its own URL and secret now."""
    if adapter_name not in current_app.extensions["dispatcher.adapters"]:
        return problem(404, "Unknown adapter", f"no adapter named {adapter_name!r}")
    return problem(
        410,
        "Use the connection's webhook URL",
        f"webhooks go to /webhooks/{adapter_name}/<connection path>: see the connection's "
        "settings page",
    )


@bp.route("/<adapter_name>/<path>", methods=["HEAD"])
def probe(adapter_name: str, path: str):
    """A platform checking the URL before it creates a webhook (Trello sends HEAD)."""
    if adapter_for_webhook(adapter_name, path) is None:
        return "", 404
    return "", 200


@dataclass(frozen=True)
class Incoming:
    """What intake reads of a request: its headers (lower-cased), the length it declares
    (None for a chunked body) and the body's stream."""

    headers: dict[str, str]
    content_length: int | None
    stream: IO[bytes]

    @classmethod
    def from_environ(cls, environ: dict[str, Any]) -> Incoming:
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
            if environ.get(key):
                headers[name] = environ[key]
        return cls(headers, get_content_length(environ), get_input_stream(environ))


def take(adapter_name: str, path: str, incoming: Incoming) -> ResponseReturnValue:
    """POST /webhooks/<adapter_name>/<path>: the answer to one delivery (served by
    `fast_path.WebhookFastPath`, inside an app context)."""
    found = webhook_lookup.find(adapter_name, path)
    if found is None:
        return _unknown_url()
    if not found.adapter.supports(Capability.WEBHOOKS):
        return problem(404, "No webhooks", f"{adapter_name} does not send webhooks")

    limit = current_app.config["SETTINGS"].webhook_max_bytes
    if (incoming.content_length or 0) > limit:
        return _too_large(limit)
    body = incoming.stream.read(limit + 1)  # a chunked body may carry no Content-Length
    if len(body) > limit:
        return _too_large(limit)
    headers = dict(incoming.headers)
    headers.pop(PAGE_HEADER, None)  # only Dispatcher's own submission page sets it

    answer = _verify_and_store(found, adapter_name, headers, body)
    if answer is not _CHANGED:
        return answer
    # the remembered connection changed (or went) since: look again, and start over
    found = webhook_lookup.find(adapter_name, path, fresh=True)
    if found is None:
        return _unknown_url()
    if not found.adapter.supports(Capability.WEBHOOKS):
        return problem(404, "No webhooks", f"{adapter_name} does not send webhooks")
    return _verify_and_store(found, adapter_name, headers, body)


#: `_verify_and_store` on a remembered connection whose row the INSERT turned away
_CHANGED = object()


def _verify_and_store(
    found: webhook_lookup.Found, adapter_name: str, headers: dict[str, str], body: bytes
):
    adapter = found.adapter
    connection_id = adapter.connection_id
    reply = adapter.handshake(headers, body)
    if reply is not None:
        connection = db.session.get(Connection, connection_id)
        if connection is None:
            return _unknown_url()
        return _handshake(connection, reply)
    try:
        adapter.verify(headers, body)
    except SignatureError as exc:
        if not found.fresh:  # perhaps signed with a secret this process has not seen yet
            return _CHANGED
        return problem(401, "Signature rejected", str(exc))
    except Unsupported as exc:
        return problem(404, "No webhooks", str(exc))

    status, error = "received", None
    try:
        event_id = adapter.event_id(headers, body)
    except PayloadError as exc:
        # no delivery id to de-duplicate on: keep it under one derived from the bytes
        event_id = "unidentified-" + hashlib.sha256(body).hexdigest()[:40]
        status, error = "invalid", str(exc)
    try:
        events = adapter.parse(headers, body)
        unused = [e for e in events if e.kind in (EventKind.UNKNOWN, EventKind.IGNORED)]
        if events and len(unused) == len(events) and status != "invalid":
            kinds = ", ".join(e.platform_status or "?" for e in unused)
            status, error = "ignored", f"event type not used: {kinds}"
    except PayloadError as exc:
        if status != "invalid":
            status, error = "invalid", str(exc)

    row = {
        "adapter": adapter_name,
        "connection_id": connection_id,
        "event_id": event_id,
        "headers": _safe_headers(headers),
        "body": body.decode("utf-8", errors="replace"),
        "status": status,
        "error": error,
    }
    # end the session's transaction, if a caller sharing the app context (a test) left one
    # open, as the session's commit did when it stored the row: its writes are committed,
    # never left holding the lock this insert waits for
    if db.session.registry.has() and db.session().in_transaction():
        db.session.commit()
    inbound_id = group_commit.store(row, enqueue=status == "received", guard=found.guard)
    if inbound_id is None:
        if not found.fresh:  # a duplicate, or the connection changed: a fresh look tells
            return _CHANGED
        return _duplicate(connection_id, event_id) or _changed_meanwhile()
    if status == "invalid":
        return problem(400, "Webhook not understood", error or "", event_id=event_id)
    if status == "ignored":
        return {"status": "ignored", "event_id": event_id, "id": inbound_id}, 200
    return {"status": "accepted", "event_id": event_id, "id": inbound_id}, adapter.accepted_status


def _changed_meanwhile():
    """The connection changed between its look-up and the INSERT: nothing is stored, and a
    sender that sees a 503 delivers again (verified then against the connection as it is)."""
    answer = problem(
        503, "Connection changed", "the connection changed while storing: deliver again"
    )
    answer.headers["Retry-After"] = "1"
    return answer


def _unknown_url():
    return problem(404, "Unknown webhook URL", "no connection has this webhook URL")


def _handshake(connection: Connection, reply: HandshakeReply):
    """Echo the platform's handshake; store its secret only where one is expected."""
    if not handshakes.accept(connection, reply):
        db.session.rollback()
        return problem(
            403,
            "Handshake refused",
            "this connection already has its signing secret: register the webhook again "
            "from the connection's settings to replace it",
        )
    db.session.commit()
    return "", reply.status, dict(reply.headers)


def _too_large(limit: int):
    return problem(413, "Payload too large", f"limit is {limit} bytes")


def _duplicate(connection_id: int, event_id: str):
    """Answer a redelivery as the first delivery was answered; re-queue it if still owed.
    None if no such event is stored (the INSERT refused it for its connection's change)."""
    existing = db.session.scalars(
        select(InboundEvent).where(
            InboundEvent.connection_id == connection_id, InboundEvent.event_id == event_id
        )
    ).first()
    if existing is None:
        return None
    if existing is not None and existing.status == "invalid":
        return problem(
            400, "Webhook not understood", existing.error or "", event_id=event_id, duplicate=True
        )
    if existing is not None and existing.status == "received":
        enqueue_apply_quietly(existing.id)
    return {"status": "duplicate", "event_id": event_id}, 200


_SECRET_HEADERS = {"authorization", "cookie"}


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _SECRET_HEADERS}
