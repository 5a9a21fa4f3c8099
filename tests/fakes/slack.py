"""A fake Slack for the Slack teammate channel: a real HTTP server on loopback.

It takes incoming-webhook posts the way Slack does (https://api.slack.com/messaging/webhooks):
``POST /services/T…/B…/<token>`` with a JSON body holding ``text`` and/or ``blocks``; it
checks the Block Kit it is given (known block types, text objects, the limits on header,
section, button text, value and url, unique action ids) and answers 200 ``ok``, 400
``invalid_payload`` (not a JSON object), 400 ``no_text`` (neither text nor blocks), 400
``invalid_blocks`` (a block Slack would refuse), 404 ``no_service`` (unknown webhook URL).
It keeps every accepted message, and builds the interactivity callback Slack would send
when someone presses one of a message's buttons, signed with Slack's v0 scheme.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

BLOCK_TYPES = {"section", "actions", "context", "divider", "header", "image", "input",
               "rich_text", "file", "video"}  # fmt: skip
TEXT_TYPES = {"plain_text", "mrkdwn"}
ELEMENT_TYPES = {"button", "static_select", "overflow", "datepicker", "checkboxes", "image"}
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


class Invalid(Exception):
    """A payload Slack would refuse; the argument is Slack's error word."""


@dataclass
class FakeSlack:
    signing_secret: str = SIGNING_SECRET
    messages: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (error word, why)
    base_url: str = ""
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/services/T0FAKE001/B0FAKE002/{self.token}"

    # -- the server ---------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method != "POST" or request.path != urlsplit(self.webhook_url).path:
            return self._answer(404, "no_service", "unknown webhook URL")(environ, start_response)
        try:
            message = json.loads(request.get_data())
            if not isinstance(message, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            return self._answer(400, "invalid_payload", str(exc))(environ, start_response)
        try:
            check_message(message)
        except Invalid as exc:
            word, why = exc.args
            return self._answer(400, word, why)(environ, start_response)
        with self._lock:
            self.messages.append(message)
        return Response("ok", status=200, mimetype="text/html")(environ, start_response)

    def _answer(self, status: int, word: str, why: str) -> Response:
        with self._lock:
            self.refused.append((word, why))
        return Response(word, status=status, mimetype="text/html")

    def start(self) -> FakeSlack:
        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=Quiet)
        self.base_url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def hostport(self) -> str:
        return urlsplit(self.base_url).netloc

    # -- the person pressing a button ------------------------------------------------------
    def press(
        self,
        message: dict[str, Any],
        label: str,
        *,
        user: str = "ann.writer",
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """The signed callback Slack sends when `user` presses the button labelled `label`
        on `message`: form-encoded ``payload`` JSON, with Slack's v0 signature headers."""
        block, button = find_button(message, label)
        now = time.time()
        action = {
            "type": "button",
            "block_id": block.get("block_id", "b1"),
            "action_id": button["action_id"],
            "text": button["text"],
            "action_ts": f"{now:.6f}",
        }
        if "value" in button:
            action["value"] = button["value"]
        payload = {
            "type": "block_actions",
            "user": {"id": "U0TEAMMATE", "username": user, "name": user, "team_id": "T0FAKE001"},
            "api_app_id": "A0DISPATCH",
            "token": "deprecated-verification-token",
            "container": {
                "type": "message",
                "message_ts": "1700000000.000100",
                "channel_id": "C0JOBS",
                "is_ephemeral": False,
            },  # fmt: skip
            "trigger_id": f"{int(now)}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}",
            "team": {"id": "T0FAKE001", "domain": "fake"},
            "channel": {"id": "C0JOBS", "name": "jobs"},
            "message": {
                "type": "message",
                "text": message.get("text", ""),
                "blocks": message.get("blocks", []),
            },  # fmt: skip
            "response_url": f"{self.base_url}/actions/T0FAKE001/1/{secrets.token_hex(6)}",
            "actions": [action],
        }
        return self.signed(payload, timestamp=timestamp, secret=secret)

    def signed(
        self,
        payload: dict[str, Any],
        *,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Any interactivity payload, form-encoded and signed as Slack signs it."""
        body = urlencode({"payload": json.dumps(payload)}).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        base = f"v0:{ts}:".encode() + body
        key = (secret if secret is not None else self.signing_secret).encode()
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest(),
        }, body


def find_button(message: dict[str, Any], label: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("type") == "button" and element["text"]["text"] == label:
                return block, element
    raise AssertionError(f"no {label!r} button in {message!r}")


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every button of a message, by its label."""
    found = {}
    for block in message.get("blocks", []):
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("type") == "button":
                    found[element["text"]["text"]] = element
    return found


# -- what Slack checks ---------------------------------------------------------------------------
def check_message(message: dict[str, Any]) -> None:
    text, blocks = message.get("text"), message.get("blocks")
    if text is not None and not isinstance(text, str):
        raise Invalid("invalid_payload", "text must be a string")
    if blocks is None:
        if not text:
            raise Invalid("no_text", "neither text nor blocks")
        return
    if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
        raise Invalid("invalid_blocks", "blocks must be a list of 1 to 50 blocks")
    for i, block in enumerate(blocks):
        _check_block(block, f"blocks[{i}]")


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
        raise Invalid("invalid_blocks", f"{where}: unknown block type")
    kind = block["type"]
    if kind == "header":
        _check_text(block.get("text"), f"{where}.text", 150, plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            raise Invalid("invalid_blocks", f"{where}: a section needs text or fields")
        if "text" in block:
            _check_text(block["text"], f"{where}.text", 3000)
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                raise Invalid("invalid_blocks", f"{where}.fields: 1 to 10 fields")
            for j, item in enumerate(fields):
                _check_text(item, f"{where}.fields[{j}]", 2000)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            raise Invalid("invalid_blocks", f"{where}.elements: 1 to 25 elements")
        seen: set[str] = set()
        for j, element in enumerate(elements):
            _check_element(element, f"{where}.elements[{j}]", seen)


def _check_element(element: Any, where: str, seen: set[str]) -> None:
    if not isinstance(element, dict) or element.get("type") not in ELEMENT_TYPES:
        raise Invalid("invalid_blocks", f"{where}: unknown element type")
    if element["type"] != "button":
        return
    _check_text(element.get("text"), f"{where}.text", 75, plain_only=True)
    action_id = element.get("action_id")
    if action_id is not None:
        if not isinstance(action_id, str) or not action_id or len(action_id) > 255:
            raise Invalid("invalid_blocks", f"{where}.action_id: 1 to 255 characters")
        if action_id in seen:
            raise Invalid("invalid_blocks", f"{where}.action_id: {action_id} used twice")
        seen.add(action_id)
    if "url" in element:
        url = element["url"]
        if not isinstance(url, str) or len(url) > 3000:
            raise Invalid("invalid_blocks", f"{where}.url: at most 3000 characters")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise Invalid("invalid_blocks", f"{where}.url: not an http(s) URL")
    if "value" in element and (
        not isinstance(element["value"], str) or len(element["value"]) > 2000
    ):
        raise Invalid("invalid_blocks", f"{where}.value: a string of at most 2000 characters")
    if "style" in element and element["style"] not in ("primary", "danger"):
        raise Invalid("invalid_blocks", f"{where}.style: primary or danger")


def _check_text(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> None:
    allowed = {"plain_text"} if plain_only else TEXT_TYPES
    if not isinstance(obj, dict) or obj.get("type") not in allowed:
        raise Invalid("invalid_blocks", f"{where}: a {' or '.join(sorted(allowed))} object")
    text = obj.get("text")
    if not isinstance(text, str) or not text or len(text) > limit:
        raise Invalid("invalid_blocks", f"{where}: text of 1 to {limit} characters")
