"""POST /webhooks/<adapter>: verify, store, acknowledge, then apply (DESIGN rule 4).

Answers, for senders and for whoever reads the logs:
- 202 stored and queued for applying;
- 200 a duplicate of an event already stored (a no-op; the apply step is queued again in
  case the first enqueue was lost);
- 400 malformed body or unknown event type (stored as ``invalid`` for inspection; a
  redelivery of it gets the same 400);
- 401 bad signature, or timestamp outside the window (the adapter checks both, the signature
  in constant time, on the raw bytes before parsing; nothing is stored);
- 404 no such adapter, or it takes no webhooks; 413 body larger than webhook_max_bytes
  (read no further than the limit).
"""

from __future__ import annotations

import hashlib
import logging

from flask import Blueprint, current_app, request
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from adapters.base import Capability, EventKind
from dispatcher.errors import PayloadError, SignatureError, Unsupported
from dispatcher.extensions import db
from dispatcher.http_errors import problem
from dispatcher.models import InboundEvent

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

#: RQ retries of an apply job that raised or whose worker died
APPLY_RETRY_INTERVALS = [1, 3, 10, 30, 60]
APPLY_TIMEOUT = 60


@bp.post("/<adapter_name>")
def receive(adapter_name: str):
    registry = current_app.extensions["dispatcher.adapters"]
    if adapter_name not in registry:
        return problem(404, "Unknown adapter", f"no adapter named {adapter_name!r}")
    adapter = registry.get(adapter_name)
    if not adapter.supports(Capability.WEBHOOKS):
        return problem(404, "No webhooks", f"{adapter_name} does not send webhooks")

    limit = current_app.config["SETTINGS"].webhook_max_bytes
    if (request.content_length or 0) > limit:
        return _too_large(limit)
    body = request.stream.read(limit + 1)  # a chunked body may carry no Content-Length
    if len(body) > limit:
        return _too_large(limit)
    headers = {k.lower(): v for k, v in request.headers.items()}

    try:
        adapter.verify(headers, body)
    except SignatureError as exc:
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
        unknown = [e.platform_status or "?" for e in events if e.kind == EventKind.UNKNOWN]
        if unknown and status != "invalid":
            status, error = "invalid", f"unknown event type: {', '.join(unknown)}"
    except PayloadError as exc:
        if status != "invalid":
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
        db.session.flush()
        inbound_id = inbound.id  # read before the commit expires it: no reload after
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _duplicate(adapter_name, event_id)
    if status == "invalid":
        return problem(400, "Webhook not understood", error or "", event_id=event_id)
    enqueue_apply_quietly(inbound_id)
    return {"status": "accepted", "event_id": event_id, "id": inbound_id}, 202


def _too_large(limit: int):
    return problem(413, "Payload too large", f"limit is {limit} bytes")


def _duplicate(adapter_name: str, event_id: str):
    """Answer a redelivery as the first delivery was answered; re-queue it if still owed."""
    existing = db.session.scalars(
        select(InboundEvent).where(
            InboundEvent.adapter == adapter_name, InboundEvent.event_id == event_id
        )
    ).first()
    if existing is not None and existing.status == "invalid":
        return problem(
            400, "Webhook not understood", existing.error or "", event_id=event_id, duplicate=True
        )
    if existing is not None and existing.status == "received":
        enqueue_apply_quietly(existing.id)
    return {"status": "duplicate", "event_id": event_id}, 200


def enqueue_apply(inbound_id: int) -> bool:
    """Queue the apply step under the event's own job id; False if it is already queued."""
    from rq import Retry

    from dispatcher.inbound.apply import apply_inbound
    from dispatcher.queues import INBOUND, enqueue_once

    job = enqueue_once(
        INBOUND,
        apply_inbound,
        inbound_id,
        job_id=f"inbound-{inbound_id}",
        retry=Retry(
            max=len(APPLY_RETRY_INTERVALS), interval=APPLY_RETRY_INTERVALS, enqueue_at_front=True
        ),
        job_timeout=APPLY_TIMEOUT,
    )
    return job is not None


def enqueue_apply_quietly(inbound_id: int) -> None:
    """After the commit: if Redis is down, the reconciler picks the row up later."""
    try:
        enqueue_apply(inbound_id)
    except RedisError as exc:
        log.warning("could not enqueue inbound %s (%s); the reconciler will", inbound_id, exc)


_SECRET_HEADERS = {"authorization", "cookie"}


def _safe_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in _SECRET_HEADERS}
