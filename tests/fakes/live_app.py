"""The app served by a real threaded werkzeug server on a loopback port, for flows where a
platform calls Dispatcher back while Dispatcher is still talking to it (a webhook handshake,
a HEAD check). Bind the socket first, so its address can be the apps' public_base_url."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

from dispatcher import create_app
from dispatcher.extensions import db


@contextmanager
def loopback_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()
    return f"http://{host}:{port}"


@contextmanager
def serve_app(config: dict[str, Any], sock: socket.socket) -> Iterator[str]:
    """A second app built from `config` (same database and Redis as the test's), serving on
    `sock` in a thread; yields its URL and stops it after."""
    web = create_app(config)
    host, port = sock.getsockname()
    server = make_server(host, port, web, threaded=True, fd=sock.fileno())
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    try:
        yield base_url(sock)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        with web.app_context():
            db.engine.dispose()
