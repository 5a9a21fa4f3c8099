"""A local fake of Trello's REST API and webhooks, built from Trello's documentation, a real
HTTP server on loopback.

As Trello does: ``key`` and ``token`` query parameters (or the ``Authorization: OAuth``
header) on every call, 401 with Trello's plain-text answer otherwise; plain-text 400s
(``invalid value for idList``) for missing or unknown fields; cards with ``id``,
``shortLink``, ``url`` and ``shortUrl``; comments as ``commentCard`` actions. Creating a
webhook first sends HEAD to its ``callbackURL`` and refuses anything but 200; a second
webhook for the same URL, model and token is refused. Every action on the board is then
POSTed as ``{action, model}`` to each webhook watching it, with ``X-Trello-Webhook`` =
base64 HMAC-SHA1(application secret, body + callbackURL). Actions caused through the API
(a card created, a comment posted) are sent from a background thread, as Trello sends them
after answering; the test controls `move` and `comment` (the person's own actions in
Trello's UI) send theirs before returning, with the answers in `deliveries`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from fakes.loopback import serve
from fakes.receiver import Received

API_KEY = "trello-key-0001"
TOKEN = "trello-token-0001"
APP_SECRET = "trello-app-secret-0001"
BOARD = "b0a7d0000000000000000001"
TODO = "1150000000000000000000a1"
DONE = "1150000000000000000000d0"
ME = {"id": "3e3b00000000000000000001", "username": "dispatcherbot", "fullName": "Dispatcher"}
BOB = {"id": "3e3b00000000000000000b0b", "username": "bob", "fullName": "Bob Baker"}


class TrelloError(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class FakeTrello:
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    members: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {m["id"]: dict(m) for m in (ME, BOB)}
    )
    lists: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            TODO: {"id": TODO, "name": "To do", "idBoard": BOARD},
            DONE: {"id": DONE, "name": "Done", "idBoard": BOARD},
        }
    )
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _stop: Any = field(default=None, repr=False)
    _senders: list[threading.Thread] = field(default_factory=list, repr=False)

    # -- server ------------------------------------------------------------------------
    def start(self) -> FakeTrello:
        self.url, self._stop = serve(self)
        return self

    def stop(self) -> None:
        self.settle()
        if self._stop is not None:
            self._stop()
            self._stop = None

    def settle(self, timeout: float = 10) -> None:
        """Wait until the webhooks sent in the background have been answered."""
        for thread in list(self._senders):
            thread.join(timeout)

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            Received(request.method, request.path, headers, body, datetime.now(UTC).timestamp())
        )
        try:
            self._authenticate(request)
            status, payload = self._route(request, _params(request))
        except TrelloError as exc:
            return Response(exc.text, status=exc.status, mimetype="text/plain")(
                environ, start_response
            )
        return Response(json.dumps(payload), status=status, mimetype="application/json")(
            environ, start_response
        )

    def _authenticate(self, request: Request) -> None:
        key, token = request.args.get("key"), request.args.get("token")
        oauth = request.headers.get("Authorization", "")
        if oauth.startswith("OAuth "):
            pairs = dict(re.findall(r'(\w+)="([^"]*)"', oauth))
            key, token = pairs.get("oauth_consumer_key"), pairs.get("oauth_token")
        if key != API_KEY:
            raise TrelloError(401, "invalid key")
        if token != TOKEN:
            raise TrelloError(401, "invalid token")

    def _route(self, request: Request, params: dict[str, Any]) -> tuple[int, Any]:
        path = request.path.strip("/").split("/")
        method = request.method
        if path[:1] != ["1"]:
            raise TrelloError(404, "Cannot " + method + " " + request.path)
        path = path[1:]
        with self._lock:
            if path[:1] == ["members"] and len(path) == 2 and method == "GET":
                return 200, self._member(path[1])
            if path[:1] == ["tokens"] and path[2:] == ["webhooks"] and method == "GET":
                return 200, [w for w in self.webhooks.values() if w["token"] == path[1]]
            if path == ["cards"] and method == "POST":
                return 200, self._create_card(params)
            if path[:1] == ["boards"] and len(path) in (3, 4) and path[2] == "cards":
                return 200, self._board_cards(path[1], path[3] if len(path) == 4 else "open")
            if path[:1] == ["cards"] and len(path) == 2 and method == "GET":
                return 200, self._card(path[1])
            if path[:1] == ["cards"] and path[2:] == ["actions"] and method == "GET":
                return 200, self._card_actions(path[1], params.get("filter", "all"))
            if path[:1] == ["cards"] and path[2:] == ["actions", "comments"] and method == "POST":
                return 200, self._comment(path[1], params.get("text"), ME, background=True)
        if path == ["webhooks"] and method == "POST":
            return 200, self._create_webhook(params)  # sends HEAD: not under the lock
        raise TrelloError(404, "Cannot " + method + " " + request.path)

    # -- members and cards --------------------------------------------------------------
    def _member(self, id_or_name: str) -> dict[str, Any]:
        if id_or_name == "me":
            return self.members[ME["id"]]
        for member in self.members.values():
            if id_or_name in (member["id"], member["username"]):
                return member
        raise TrelloError(404, "model not found")

    def _create_card(self, params: dict[str, Any]) -> dict[str, Any]:
        list_id = params.get("idList")
        if not isinstance(list_id, str) or list_id not in self.lists:
            raise TrelloError(400, "invalid value for idList")
        members = params.get("idMembers") or []
        if isinstance(members, str):
            members = [m for m in members.split(",") if m]
        if not isinstance(members, list) or any(m not in self.members for m in members):
            raise TrelloError(400, "invalid value for idMembers")
        due = params.get("due")
        if due not in (None, ""):
            try:
                datetime.fromisoformat(str(due).replace("Z", "+00:00"))
            except ValueError as exc:
                raise TrelloError(400, "invalid date") from exc
        name = params.get("name") or ""
        if not isinstance(name, str) or len(name) > 16384:
            raise TrelloError(400, "invalid value for name")
        card_id, short = secrets.token_hex(12), secrets.token_urlsafe(6)[:8]
        card = {
            "id": card_id,
            "name": name,
            "desc": str(params.get("desc") or ""),
            "idList": list_id,
            "idBoard": BOARD,
            "idMembers": members,
            "due": due or None,
            "closed": False,
            "idShort": len(self.cards) + 1,
            "shortLink": short,
            "shortUrl": f"https://trello.com/c/{short}",
            "url": f"https://trello.com/c/{short}/{len(self.cards) + 1}-card",
        }
        self.cards[card_id] = card
        self._act("createCard", ME, {"card": _card_ref(card), "list": self._list_ref(list_id)},
                  background=True)  # fmt: skip
        return card

    def _card(self, card_id: str) -> dict[str, Any]:
        card = self.cards.get(card_id)
        if card is None:
            raise TrelloError(404, "The requested resource was not found.")
        return card

    def _board_cards(self, board: str, filter_: str) -> list[dict[str, Any]]:
        if board != BOARD:
            raise TrelloError(404, "The requested resource was not found.")
        if filter_ not in ("all", "open", "closed", "visible"):
            raise TrelloError(400, "invalid value for filter")
        cards = list(self.cards.values())
        if filter_ in ("open", "visible"):
            cards = [c for c in cards if not c["closed"]]
        elif filter_ == "closed":
            cards = [c for c in cards if c["closed"]]
        return cards

    def _card_actions(self, card_id: str, filter_: str) -> list[dict[str, Any]]:
        self._card(card_id)
        kinds = None if filter_ == "all" else set(filter_.split(","))
        found = [
            a
            for a in self.actions
            if a["data"].get("card", {}).get("id") == card_id
            and (kinds is None or a["type"] in kinds)
        ]
        return found[::-1]  # newest first

    def _comment(
        self, card_id: str, text: Any, member: dict[str, Any], *, background: bool
    ) -> dict[str, Any]:
        card = self._card(card_id)
        if not isinstance(text, str) or not text.strip() or len(text) > 16384:
            raise TrelloError(400, "invalid value for text")
        data = {"text": text, "card": _card_ref(card), "list": self._list_ref(card["idList"])}
        return self._act("commentCard", member, data, background=background)

    def _list_ref(self, list_id: str) -> dict[str, str]:
        return {"id": list_id, "name": self.lists[list_id]["name"]}

    # -- webhooks -----------------------------------------------------------------------
    def _create_webhook(self, params: dict[str, Any]) -> dict[str, Any]:
        url, model = params.get("callbackURL"), params.get("idModel")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise TrelloError(400, "invalid value for callbackURL")
        if model not in (BOARD, *self.cards, *self.lists):
            raise TrelloError(400, "invalid value for idModel")
        with self._lock:
            if any(
                w["callbackURL"] == url and w["idModel"] == model for w in self.webhooks.values()
            ):
                raise TrelloError(
                    400, "A webhook with that callback, model, and token already exists"
                )
        try:
            status = requests.head(url, timeout=5, allow_redirects=False).status_code
        except requests.RequestException as exc:
            raise TrelloError(400, f"URL ({url}) did not return 200 status code: {exc}") from exc
        if status != 200:
            raise TrelloError(400, f"URL ({url}) did not return 200 status code, got {status}")
        hook = {
            "id": secrets.token_hex(12),
            "description": str(params.get("description") or ""),
            "idModel": model,
            "callbackURL": url,
            "active": True,
            "consecutiveFailures": 0,
            "token": TOKEN,
        }
        with self._lock:
            self.webhooks[hook["id"]] = hook
        return {k: v for k, v in hook.items() if k != "token"}

    def _act(
        self, type_: str, member: dict[str, Any], data: dict[str, Any], *, background: bool
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        action = {
            "id": secrets.token_hex(12),
            "idMemberCreator": member["id"],
            "type": type_,
            "date": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "data": {**data, "board": {"id": BOARD, "name": "Work", "shortLink": "brd00001"}},
            "memberCreator": dict(member),
        }
        self.actions.append(action)
        if background:
            thread = threading.Thread(target=self.send, args=(action,), daemon=True)
            self._senders.append(thread)
            thread.start()
        return action

    def send(self, action: dict[str, Any], secret: str = APP_SECRET) -> list[int]:
        """POST `action` to every webhook watching its board, card or list, signed as Trello
        signs; returns the answers' statuses."""
        models = {
            BOARD,
            action["data"].get("card", {}).get("id"),
            action["data"].get("list", {}).get("id"),
        }
        statuses = []
        for hook in [w for w in self.webhooks.values() if w["active"] and w["idModel"] in models]:
            body = json.dumps({"action": action, "model": {"id": hook["idModel"]}}).encode()
            headers = {
                "Content-Type": "application/json",
                "X-Trello-Webhook": sign(body, hook["callbackURL"], secret),
            }
            try:
                status = requests.post(
                    hook["callbackURL"], data=body, headers=headers, timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            self.deliveries.append(Delivery(hook["callbackURL"], body, headers, status))
            statuses.append(status)
        return statuses

    # -- the person's own actions (Trello's UI), for tests ---------------------------------
    def move(self, card_id: str, list_id: str, member: dict[str, Any] = BOB) -> list[int]:
        """The person moves the card; returns the statuses the webhooks answered."""
        with self._lock:
            card = self._card(card_id)
            before = card["idList"]
            card["idList"] = list_id
            data = {
                "card": _card_ref(card),
                "old": {"idList": before},
                "listBefore": self._list_ref(before),
                "listAfter": self._list_ref(list_id),
            }
        return self.send(self._act("updateCard", member, data, background=False))

    def comment(self, card_id: str, text: str, member: dict[str, Any] = BOB) -> list[int]:
        """The person's comment; returns the statuses the webhooks answered."""
        return self.send(self._comment(card_id, text, member, background=False))

    def comments(self, card_id: str) -> list[str]:
        return [a["data"]["text"] for a in self._card_actions(card_id, "commentCard")][::-1]


def sign(body: bytes, callback_url: str, secret: str = APP_SECRET) -> str:
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _card_ref(card: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "idShort", "shortLink", "idList")
    return {k: card[k] for k in keys}


def _params(request: Request) -> dict[str, Any]:
    """Trello reads fields from the query string and from a JSON or form body alike."""
    params: dict[str, Any] = {k: v for k, v in request.args.items() if k not in ("key", "token")}
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            params.update(body)
    else:
        params.update(request.form.to_dict())
    return params
