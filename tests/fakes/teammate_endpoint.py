"""A teammate's own system, for the webhook channel: a real HTTP server on loopback that
verifies what Dispatcher posts with the `standardwebhooks` package from PyPI (an independent
implementation of the scheme, not ours), de-duplicates on ``webhook-id`` as the spec asks
receivers to, and signs its answers back with the same package."""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass
class TeammateEndpoint:
    secret: str
    #: every verified event, in arrival order (redeliveries included)
    received: list[dict[str, Any]] = field(default_factory=list)
    #: webhook-id of each verified delivery, in arrival order
    ids: list[str] = field(default_factory=list)
    #: why each refused delivery was refused
    refused: list[str] = field(default_factory=list)
    #: answer statuses to use, in order, before the default 204
    statuses: list[int] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            event = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            with self._lock:
                self.refused.append(str(exc))
            return Response(str(exc), status=401)(environ, start_response)
        with self._lock:
            self.received.append(event)
            self.ids.append(headers["webhook-id"])
            status = self.statuses.pop(0) if self.statuses else 204
        return Response(status=status)(environ, start_response)

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        """The events once each, by webhook-id (what a de-duplicating receiver keeps)."""
        return dict(zip(self.ids, self.received, strict=True))

    def start(self) -> TeammateEndpoint:
        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self._server.port}/dispatcher-jobs"
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
        return self.url.split("/")[2]


def callback(
    secret: str,
    type_: str,
    data: dict[str, Any],
    *,
    msg_id: str | None = None,
    when: datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """What the teammate's system sends back: ``{type, timestamp, data}`` signed by the
    `standardwebhooks` package with the connection's secret."""
    when = when or datetime.now(UTC)
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    body = json.dumps({"type": type_, "timestamp": when.isoformat(), "data": data})
    signature = Webhook(secret).sign(msg_id, when, body)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }, body.encode()
