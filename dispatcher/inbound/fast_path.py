"""POST /webhooks/<adapter>/<path> served beside Flask's request handling, not through it.

Why: a webhook needs none of what Flask does for a page: no session cookie, no login, no form
or CSRF token, no throttle (`security/limits.py` says why webhooks are never throttled), no
URL map beyond one pattern. Opening the session, the limiter's bookkeeping, the request
hooks and the response's finalising cost the web process about as much CPU as storing the
webhook (`bench/profile_intake.py`), and under a burst that CPU is the intake rate.

What a webhook keeps: the app context (database, settings, adapters), its request id in the
logs and in the answer, the security headers, the webhook metrics, and problem details for
every error, a 500 included. Every other request, and every other method on these URLs
(Trello's HEAD check), goes to Flask as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, has_app_context
from werkzeug.exceptions import InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from dispatcher.http_errors import problem
from dispatcher.inbound.webhooks import Incoming, take
from dispatcher.ops import logs, metrics
from dispatcher.security.headers import EXTENSION as SECURITY_HEADERS

log = logging.getLogger(__name__)

_ROUTE = re.compile(r"/webhooks/([^/]+)/([^/]+)")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WebhookFastPath:
    """WSGI middleware: webhook deliveries to `take`, everything else to `wsgi_app`."""

    def __init__(self, app: Flask, wsgi_app: WSGIApp):
        self.app = app
        self.wsgi_app = wsgi_app
        self._added: list[tuple[str, str]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        match = _ROUTE.fullmatch(environ.get("PATH_INFO", ""))
        if match is None or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        return self.answer(match[1], match[2], environ)(environ, start_response)

    def answer(self, adapter_name: str, path: str, environ: dict[str, Any]) -> WSGIApp:
        """The response to one delivery. Like a Flask request, it reuses the app context a
        caller (a test) has pushed for this app, and otherwise pushes its own."""
        reuse = has_app_context() and current_app._get_current_object() is self.app
        context = None if reuse else self.app.app_context()
        if context is not None:
            context.push()
        try:
            request_id = logs.start_request(environ.get("HTTP_X_REQUEST_ID", ""))
            try:
                result = take(adapter_name, path, Incoming.from_environ(environ))
                if self._plain_json(result):
                    return self._json_answer(adapter_name, *result, request_id)
                response = self.app.make_response(result)
            except Exception:
                if self.app.config.get("PROPAGATE_EXCEPTIONS") or self.app.testing:
                    raise
                log.exception("webhook %s/%s failed", adapter_name, path)
                error = InternalServerError()
                response = problem(error.code, error.name, error.description)
            metrics.observe_webhook(adapter_name, response)
            response.headers[logs.REQUEST_ID_HEADER] = request_id
            return self.app.extensions[SECURITY_HEADERS](response)
        finally:
            logs.clear()
            if context is not None:
                context.pop()

    def _plain_json(self, result: Any) -> bool:
        """A (dict, status) answer that Flask would serialize compactly (out of debug)."""
        json = self.app.json
        compact = json.compact if json.compact is not None else not self.app.debug
        return (
            compact
            and type(result) is tuple
            and len(result) == 2
            and type(result[0]) is dict
            and type(result[1]) is int
        )

    def _json_answer(
        self, adapter_name: str, body: dict[str, Any], status: int, request_id: str
    ) -> WSGIApp:
        """What `make_response` and the headers below would send for a (dict, status) answer,
        written without a werkzeug `Response` (about a tenth of intake's CPU per webhook,
        `bench/profile_intake.py`): the same JSON text, status line and headers."""
        data = f"{self.app.json.dumps(body, separators=(',', ':'))}\n".encode()
        metrics.observe_webhook(adapter_name, JsonAnswer(status, body))
        headers = [
            ("Content-Type", self.app.json.mimetype),
            ("Content-Length", str(len(data))),
            (logs.REQUEST_ID_HEADER, request_id),
            *self._security_headers(),
        ]
        status_line = f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"

        def send(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response(status_line, headers)
            return [data]

        return send

    def _security_headers(self) -> list[tuple[str, str]]:
        """The headers the app's security extension adds to an answer (the same for every
        answer: they depend on the settings only), found once by asking it."""
        if self._added is None:
            probe = self.app.response_class()
            before = set(probe.headers.keys())
            self.app.extensions[SECURITY_HEADERS](probe)
            self._added = [(k, v) for k, v in probe.headers.items() if k not in before]
        return self._added


@dataclass(frozen=True)
class JsonAnswer:
    """What `metrics.observe_webhook` reads of an answer the fast path wrote itself."""

    status_code: int
    body: dict[str, Any]

    def get_json(self, silent: bool = False) -> dict[str, Any]:
        return self.body


def install(app: Flask) -> None:
    """Put the fast path in front of the app's WSGI callable (the test client's too)."""
    app.wsgi_app = WebhookFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
