"""The events a stored inbound row holds, whichever way it came in.

A webhook row keeps the bytes as received and is parsed again by its adapter. A polled row
(``source == "poll"``) keeps the normalized event as JSON, with the platform's own item in
``raw``: a poll answer has no signature or envelope worth keeping, and the apply step then
needs no adapter call to read it back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import current_app

from adapters.base import EventKind, NormalizedEvent
from dispatcher.connections import adapter_for_connection
from dispatcher.errors import PayloadError
from dispatcher.models import InboundEvent

WEBHOOK = "webhook"
POLL = "poll"


def events_of(inbound: InboundEvent) -> list[NormalizedEvent]:
    """The normalized events of a stored row; raises PayloadError if it cannot be read."""
    if inbound.source == POLL:
        return [from_json(inbound.body)]
    if inbound.connection_id is not None:
        # the connection's own adapter: its options (a board's done list) shape the parse
        adapter = adapter_for_connection(inbound.connection_id)
    else:
        adapter = current_app.extensions["dispatcher.adapters"].get(inbound.adapter)
    return adapter.parse(inbound.headers, inbound.body.encode("utf-8"))


def to_json(event: NormalizedEvent) -> str:
    return json.dumps(
        {
            "kind": str(event.kind),
            "event_id": event.event_id,
            "external_id": event.external_id,
            "occurred_at": event.occurred_at.isoformat(),
            "raw": dict(event.raw),
            "delivery_id": event.delivery_id,
            "content": event.content,
            "url": event.url,
            "worker": event.worker,
            "platform_status": event.platform_status,
            "assignment_ref": event.assignment_ref,
            "payout_cents": event.payout_cents,
        }
    )


def from_json(body: str) -> NormalizedEvent:
    try:
        data: dict[str, Any] = json.loads(body)
        kind = data["kind"]
        return NormalizedEvent(
            kind=EventKind(kind) if kind in EventKind.__members__.values() else EventKind.UNKNOWN,
            event_id=data["event_id"],
            external_id=data["external_id"],
            occurred_at=datetime.fromisoformat(data["occurred_at"]),
            raw=data.get("raw") or {},
            delivery_id=data.get("delivery_id"),
            content=data.get("content") or "",
            url=data.get("url"),
            worker=data.get("worker") or "",
            platform_status=data.get("platform_status") or "",
            assignment_ref=data.get("assignment_ref") or "",
            payout_cents=data.get("payout_cents"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PayloadError(f"stored polled event cannot be read: {exc}") from exc
