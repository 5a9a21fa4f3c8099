"""The base of every teammate channel (email, Slack, webhook, Trello, Asana).

For a teammate Dispatcher itself is the marketplace: review decisions need nobody's consent,
and work comes back through the no-account submission page (dispatcher/teammates/page.py).
Each action taken on that page is stored as an InboundEvent of the channel's connection, with
a body this class parses, and applied through the same path as a platform's webhook; a
channel's own callbacks (a Slack button, a Trello move) go to `parse_callback`.

Page actions, and the events they become:

| action   | event      | meaning                                   |
|----------|------------|-------------------------------------------|
| take     | TAKEN      | "I'll do it"                              |
| question | MESSAGE    | a question for the owner (job timeline)   |
| decline  | RETURNED   | they give the job back                    |
| submit   | DELIVERED  | text, a URL and/or files, for review      |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from adapters.base import (
    Adapter,
    Capability,
    EventKind,
    NormalizedEvent,
    PersonRef,
)
from dispatcher.errors import PayloadError, Unsupported

#: the header a stored submission-page action carries (set by Dispatcher, never by a sender)
PAGE_HEADER = "x-dispatcher-page"

PAGE_ACTIONS: dict[str, EventKind] = {
    "take": EventKind.TAKEN,
    "question": EventKind.MESSAGE,
    "decline": EventKind.RETURNED,
    "submit": EventKind.DELIVERED,
}


def page_body(
    action: str, *, order: str, nonce: str, person: str, at: datetime, **fields: Any
) -> bytes:
    """The stored body of one submission-page action (what `parse` reads back)."""
    if action not in PAGE_ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    payload = {"action": action, "order": order, "nonce": nonce, "person": person,
               "at": at.isoformat(), **fields}  # fmt: skip
    return json.dumps(payload, sort_keys=True).encode("utf-8")


class TeammateAdapter(Adapter):
    """One named person of the owner's, reached through a channel; work comes back through
    the submission link. Subclasses implement `dispatch` (or send the brief by `notify`) and
    `notify`, and may take callbacks of their own (`parse_callback`)."""

    teammate: ClassVar[bool] = True
    paid: ClassVar[bool] = False
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.REVISION})
    #: the brief goes out as an outbox notice (kind "brief") once the order is recorded as
    #: placed, instead of inside `dispatch` (email: the outbox is what sends mail)
    brief_by_notice: ClassVar[bool] = False

    def reaches(self, person: PersonRef) -> str:
        """Why this channel cannot reach `person` ("" when it can): checked before dispatch."""
        return ""

    def was_notified(self, key: str) -> bool | None:
        """Whether the notice under `key` reached the service (None: cannot tell). Asked before
        an attempt of unknown outcome is sent again, so nothing is sent twice blindly."""
        return None

    def event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        if headers.get(PAGE_HEADER):
            return "page-" + str(self._page(body)["nonce"])
        return self.callback_event_id(headers, body)

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        if headers.get(PAGE_HEADER):
            return [self.parse_page(body)]
        return self.parse_callback(headers, body)

    def parse_page(self, body: bytes) -> NormalizedEvent:
        """One submission-page action as a normalized event."""
        data = self._page(body)
        kind = PAGE_ACTIONS.get(str(data.get("action")), EventKind.UNKNOWN)
        nonce = str(data["nonce"])
        try:
            occurred = datetime.fromisoformat(str(data["at"]))
        except (KeyError, ValueError) as exc:
            raise PayloadError(f"page action without a valid time: {exc}") from exc
        return NormalizedEvent(
            kind=kind,
            event_id="page-" + nonce,
            external_id=str(data["order"]),
            occurred_at=occurred,
            raw=data,
            delivery_id="page-" + nonce if kind == EventKind.DELIVERED else None,
            content=str(data.get("text") or ""),
            url=data.get("url") or None,
            worker=str(data.get("person") or ""),
            platform_status=str(data.get("action")),
        )

    @staticmethod
    def _page(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise PayloadError(f"page action is not JSON: {exc}") from exc
        if not isinstance(data, dict) or not data.get("nonce") or not data.get("order"):
            raise PayloadError("page action without nonce or order")
        return data

    # -- a channel's own callbacks (Slack buttons, board moves); none by default ------------
    def callback_event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        raise Unsupported(f"{self.name} takes no callbacks")

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        raise Unsupported(f"{self.name} takes no callbacks")
