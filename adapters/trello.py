"""Trello as a teammate channel: a job becomes a card on the owner's board, assigned to the
person, and comes back when they move it to the "done" list or comment a link.

API: https://developer.atlassian.com/cloud/trello/rest/ (base TRELLO_API_BASE + ``/1``),
authenticated with the ``key`` and ``token`` query parameters. Webhooks:
https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/ - Trello checks the
callback URL with HEAD when the webhook is created, then POSTs ``{action, model}`` with
``X-Trello-Webhook`` = base64 HMAC-SHA1 keyed with the application's secret over the raw
body followed by the callback URL exactly as registered (the connection's webhook URL).
Trello signs no timestamp: the signed ``action.date`` stands for one (Trello retries a failed
delivery three times within about four minutes), so older actions are refused as replays.

Mapped (ACTION_MAP): ``updateCard`` into the connection's done list -> DELIVERED (the card's
comments are not in the action: the content says it moved, the URL is the card's);
``commentCard`` -> DELIVERED when the comment carries a link (the link is the work, the
comment its content), else MESSAGE; comments Dispatcher wrote (they end with its reference
line) and the other action types listed -> IGNORED; any other type -> UNKNOWN.
Not idempotent: the card's description ends with the key's reference line, and `find`
reads the board's cards for it before creating again. The board's webhook reports every
card on the board: a comment on a card that is not Dispatcher's waits for its order and is
then quarantined like any event about an unknown order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from adapters import boards
from adapters.base import (
    Capability,
    EventKind,
    JobSpec,
    NormalizedEvent,
    Notice,
    Receipt,
)
from adapters.teammate import TeammateAdapter
from dispatcher.errors import AdapterError, PayloadError, SignatureError

SIGNATURE_HEADER = "x-trello-webhook"

#: Trello's action types, in our words; updateCard and commentCard are decided in `_event`.
#: Any type not listed is UNKNOWN.
ACTION_MAP: dict[str, EventKind] = {
    "updateCard": EventKind.IGNORED,  # DELIVERED when it moved the card into the done list
    "commentCard": EventKind.MESSAGE,  # DELIVERED when the comment carries a link
    "createCard": EventKind.IGNORED,
    "copyCard": EventKind.IGNORED,
    "deleteCard": EventKind.IGNORED,
    "addMemberToCard": EventKind.IGNORED,
    "removeMemberFromCard": EventKind.IGNORED,
    "addAttachmentToCard": EventKind.IGNORED,
    "updateCheckItemStateOnCard": EventKind.IGNORED,
    "updateComment": EventKind.IGNORED,
    "deleteComment": EventKind.IGNORED,
    "createList": EventKind.IGNORED,
    "updateList": EventKind.IGNORED,
    "updateBoard": EventKind.IGNORED,
    "addMemberToBoard": EventKind.IGNORED,
}


class TrelloAdapter(TeammateAdapter):
    name = "trello"
    title = "Trello board"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.FIND, Capability.REVISION})
    calls_back_on_register = True
    reports_foreign_orders = True  # every card on the board, not only ours
    notice = (
        "Each job becomes a card on your board, in the list you name, with the person as a "
        "member. Moving it to the done list, or a comment with a link, hands the work in. "
        "Your API key and token are at trello.com/power-ups/admin; the secret is the "
        "application's, which Trello signs webhooks with."
    )
    credential_fields = ("api_key", "token", "app_secret")
    option_fields = ("board_id", "list_id", "done_list_id")

    # -- account ------------------------------------------------------------------------
    def check(self) -> str:
        member = self.json_object(self.request("GET", self._url("members", "me")))
        return f"Trello member {member.get('username', '?')}"

    def register_webhook(self, url: str, secret: str) -> None:
        """Watch the board (Trello signs with the application's secret, not `secret`); a
        webhook this token already has for the URL and board is kept, not made again."""
        board = self._option("board_id")
        token = self.credentials.get("token", "")
        existing = self._json_list(self.request("GET", self._url("tokens", token, "webhooks")))
        if any(
            isinstance(w, dict) and w.get("callbackURL") == url and w.get("idModel") == board
            for w in existing
        ):
            return
        self.request(
            "POST",
            self._url("webhooks"),
            json={"callbackURL": url, "idModel": board, "description": "Dispatcher"},
        )

    # -- outbound -----------------------------------------------------------------------
    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        found = self.find(idempotency_key)
        if found is not None:
            return found
        body: dict[str, Any] = {
            "idList": self._option("list_id"),
            "name": job.title,
            "desc": boards.describe(job, idempotency_key),
            "pos": "bottom",
        }
        if job.due_date is not None:
            body["due"] = f"{job.due_date.isoformat()}T23:59:00.000Z"
        handle = job.person.trello_handle.strip().lstrip("@") if job.person else ""
        if handle:
            member = self.json_object(self.request("GET", self._url("members", handle)))
            body["idMembers"] = member.get("id", "")
        card = self.json_object(self.request("POST", self._url("cards"), json=body))
        return self._receipt(card)

    def find(self, idempotency_key: str) -> Receipt | None:
        board = self._option("board_id")
        response = self.request(
            "GET",
            self._url("boards", board, "cards", "all"),
            params={"fields": "id,desc,url,shortUrl,idList"},
        )
        for card in self._json_list(response):
            if isinstance(card, dict) and boards.has_ref(card.get("desc", ""), idempotency_key):
                return self._receipt(card)
        return None

    def notify(self, notice: Notice) -> None:
        """A comment on the card; one already there with the notice's key is not repeated."""
        if not notice.external_id:
            raise AdapterError(self.name, "a Trello notice needs the card it is about")
        comments = self._json_list(
            self.request(
                "GET",
                self._url("cards", notice.external_id, "actions"),
                params={"filter": "commentCard"},
            )
        )
        if any(boards.has_ref(_get(c, "data", "text"), notice.key) for c in comments):
            return
        self.request(
            "POST",
            self._url("cards", notice.external_id, "actions", "comments"),
            json={"text": boards.comment_text(notice)},
        )

    # -- inbound ------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.credentials.get("app_secret", "")
        if not secret or not self.webhook_url:
            raise SignatureError("this connection cannot check Trello signatures yet")
        given = _header(headers, SIGNATURE_HEADER)
        if not given:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        digest = hmac.new(secret.encode(), body + self.webhook_url.encode(), hashlib.sha1).digest()
        if not hmac.compare_digest(base64.b64encode(digest).decode(), given.strip()):
            raise SignatureError("Trello signature does not match")
        try:
            occurred = _action_date(_payload(body))
        except PayloadError:
            return  # authentic but malformed: stored as invalid by the next steps
        age = (datetime.now(UTC) - occurred).total_seconds()
        if abs(age) > self.settings.webhook_tolerance_seconds:
            raise SignatureError(f"Trello action is {int(age)} s old: outside the window")

    def callback_event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        action_id = _get(_payload(body), "action", "id")
        if not action_id:
            raise PayloadError("Trello webhook has no action.id")
        return action_id

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        return [self._event(_payload(body))]

    # -- helpers --------------------------------------------------------------------------
    def _event(self, payload: dict[str, Any]) -> NormalizedEvent:
        action = payload.get("action")
        if not isinstance(action, dict):
            raise PayloadError("Trello webhook has no action object")
        type_, action_id = _get(action, "type"), _get(action, "id")
        if not type_ or not action_id:
            raise PayloadError("Trello action has no type or id")
        card = _get(action, "data", "card", "id")
        kind = ACTION_MAP.get(type_, EventKind.UNKNOWN)
        content, url = "", None
        if type_ == "updateCard":
            done = str(self.options.get("done_list_id") or "")
            after = _get(action, "data", "listAfter", "id")
            if done and after == done:
                kind = EventKind.DELIVERED
                name = _get(action, "data", "listAfter", "name") or "done"
                content = f"Moved the card to {name}"
                short = _get(action, "data", "card", "shortLink")
                url = f"https://trello.com/c/{short}" if short else None
        elif type_ == "commentCard":
            content = _get(action, "data", "text")
            if boards.written_by_us(content):
                kind = EventKind.IGNORED  # our own comment, echoed by the board's webhook
            elif (link := boards.first_link(content)) is not None:
                kind, url = EventKind.DELIVERED, link
        if kind in (EventKind.DELIVERED, EventKind.MESSAGE) and not card:
            raise PayloadError(f"Trello {type_} action has no data.card.id")
        return NormalizedEvent(
            kind=kind,
            event_id=action_id,
            external_id=card,
            occurred_at=_action_date(payload),
            raw=payload,
            content=content,
            url=url,
            worker=_get(action, "memberCreator", "username"),
            platform_status=type_,
        )

    def _url(self, *parts: str) -> str:
        base = str(self.settings.trello_api_base).rstrip("/")
        return base + "/1/" + "/".join(quote(p, safe="") for p in parts)

    def _option(self, name: str) -> str:
        value = str(self.options.get(name) or "").strip()
        if not value:
            raise AdapterError(self.name, f"the connection has no {name}: set it in Settings")
        return value

    def request(self, method: str, url: str, **kwargs: Any):
        """Every call carries the key and token as Trello takes them (query parameters)."""
        params = dict(kwargs.pop("params", None) or {})
        params["key"] = self.credentials.get("api_key", "")
        params["token"] = self.credentials.get("token", "")
        return super().request(method, url, params=params, **kwargs)

    def _json_list(self, response) -> list[Any]:
        """Trello answers lists as bare JSON arrays; anything else is reported, not guessed."""
        try:
            data = response.json()
        except ValueError as exc:
            raise AdapterError(self.name, "answer is not JSON", body=response.text[:300]) from exc
        if not isinstance(data, list):
            raise AdapterError(self.name, "answer is not a JSON list", body=response.text[:300])
        return data

    def _receipt(self, card: Any) -> Receipt:
        if not isinstance(card, dict) or not isinstance(card.get("id"), str):
            raise AdapterError(self.name, "card answer has no id", body=str(card)[:300])
        return Receipt(
            external_id=card["id"], url=card.get("shortUrl") or card.get("url") or "", raw=card
        )


def _payload(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"Trello webhook body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise PayloadError("Trello webhook body is not a JSON object")
    return payload


def _action_date(payload: dict[str, Any]) -> datetime:
    value = _get(payload, "action", "date")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"Trello action date {value!r} is not ISO-8601") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _get(obj: Any, *path: str) -> str:
    """The text at `path` in nested objects, or "" where any step is missing."""
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, str) else ""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""
