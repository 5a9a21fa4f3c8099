"""A real little HTTP server on loopback that records every request it gets.

Used as the far end of webhooks: tests point a callback_url at it, script its answers
(``statuses``), and read back exactly what a sender put on the wire.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


@dataclass
class Receiver:
    """Answers `default_status`, or the next of `statuses` while any are left."""

    default_status: int = 204
    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append(
                Received(
                    request.method,
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    request.get_data(),
                    time.time(),
                )
            )
            status = self.statuses.pop(0) if self.statuses else self.default_status
        return Response(status=status)(environ, start_response)

    def start(self) -> Receiver:
        server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.port}/hook"

        def stop() -> None:
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()

        self._stop = stop
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until `count` requests arrived; fail the test loudly if they do not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} requests within {timeout}s, got {self.requests}")
