"""POST /webhooks/<adapter>: verify, store, acknowledge, then apply (DESIGN rule 4).

Answers, for senders and for whoever reads the logs:
- 202 stored and queued for applying; 200 a duplicate of an event already stored (no-op);
- 400 malformed body or unknown event type (stored as ``invalid`` for inspection);
- 401 bad signature or timestamp outside the window (nothing stored);
- 404 no such adapter, or it takes no webhooks; 413 body too large.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from adapters.base import Capability, EventKind
from dispatcher.errors import PayloadError, SignatureError, Unsupported
from dispatcher.extensions import db
from dispatcher.http_errors import problem
from dispatcher.models import InboundEvent

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/<adapter_name>")
def receive(adapter_name: str):
    registry = current_app.extensions["dispatcher.adapters"]
    if adapter_name not in registry:
        return problem(404, "Unknown adapter", f"no adapter named {adapter_name!r}")
    adapter = registry.get(adapter_name)
    if not adapter.supports(Capability.WEBHOOKS):
        return problem(404, "No webhooks", f"{adapter_name} does not send webhooks")

    settings = current_app.config["SETTINGS"]
    if (request.content_length or 0) > settings.webhook_max_bytes:
        return problem(413, "Payload too large", f"limit is {settings.webhook_max_bytes} bytes")
    body = request.get_data(cache=False)
    if len(body) > settings.webhook_max_bytes:
        return problem(413, "Payload too large", f"limit is {settings.webhook_max_bytes} bytes")
    headers = {k.lower(): v for k, v in request.headers.items()}

    try:
        adapter.verify(headers, body)
        event_id = adapter.event_id(headers, body)
    except SignatureError as exc:
        return problem(401, "Signature rejected", str(exc))
    except Unsupported as exc:
        return problem(404, "No webhooks", str(exc))

    status, error = "received", None
    try:
        events = adapter.parse(headers, body)
        unknown = [e.platform_status for e in events if e.kind == EventKind.UNKNOWN]
        if unknown:
            status, error = "invalid", f"unknown event type: {', '.join(unknown)}"
    except PayloadError as exc:
        status, error = "invalid", str(exc)

    inbound = InboundEvent(
        adapter=adapter_name,
        event_id=event_id,
        headers=_safe_headers(headers),
        body=body.decode("utf-8", errors="replace"),
        status=status,
        error=error,
    )
    db.session.add(inbound)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return {"status": "duplicate", "event_id": event_id}, 200
    if status == "invalid":
        return problem(400, "Webhook not understood", error or "", event_id=event_id)
    enqueue_apply(inbound.id)
    return {"status": "accepted", "event_id": event_id, "id": inbound.id}, 202


def enqueue_apply(inbound_id: int) -> None:
    """Queue the apply step; if Redis is down the reconciler picks the row up later."""
    from rq import Retry

    from dispatcher.inbound.apply import apply_inbound
    from dispatcher.queues import INBOUND, enqueue_once

    try:
        enqueue_once(
            INBOUND,
            apply_inbound,
            inbound_id,
            job_id=f"inbound-{inbound_id}",
            retry=Retry(max=5, interval=[1, 3, 10, 30, 60]),
        )
    except RedisError as exc:
        log.warning("could not enqueue inbound %s (%s); the reconciler will", inbound_id, exc)


_SECRET_HEADERS = {"authorization", "cookie"}


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _SECRET_HEADERS}
