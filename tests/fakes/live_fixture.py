"""The live-update stream server (dispatcher/live/server.py) on a loopback port, in a thread
with its own event loop: what `dispatcher live` runs as its own process in production.

Import into a conftest or test module: ``from fakes.live_fixture import run_stream_server``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from dispatcher.live.server import StreamServer


@contextmanager
def run_stream_server(
    redis_url: str, secret_key: str, allow_origin: str, sock: socket.socket | None = None
) -> Iterator[StreamServer]:
    """Start the server (on `sock`, else a free port) and stop it, streams and all, after."""
    server = StreamServer(redis_url=redis_url, secret_key=secret_key, allow_origin=allow_origin)
    loop = asyncio.new_event_loop()
    started = asyncio.Event()
    task = loop.create_task(
        server.serve(started=started, sock=sock) if sock else server.serve("127.0.0.1", 0, started)
    )

    def run() -> None:
        asyncio.set_event_loop(loop)
        with suppress(asyncio.CancelledError):
            loop.run_until_complete(task)

    thread = threading.Thread(target=run, name="stream-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not started.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not started.is_set():
        raise RuntimeError("the stream server did not start")
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=5)
        loop.close()
