"""Running the sandbox: a threaded werkzeug server plus the background loops (simulated
workers, webhook sender). `run_sandbox` serves forever (the `dispatcher sandbox` command);
`start_sandbox_in_thread` serves on a free loopback port for tests and returns a handle.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from dispatcher.sandbox import workers
from dispatcher.sandbox.app import EXTENSION, create_sandbox_app
from dispatcher.sandbox.market import Marketplace
from dispatcher.sandbox.sender import WebhookSender

log = logging.getLogger(__name__)


class Loops:
    """The two background threads: one moves the simulated workers, one sends webhooks.

    Separate threads, so a slow webhook receiver never stalls the workers' clock.
    """

    def __init__(self, market: Marketplace, interval: float = 0.02):
        self.market = market
        self.sender = WebhookSender(market)
        self.interval = interval
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Loops:
        for name, func in (("workers", self._workers), ("webhooks", self._webhooks)):
            thread = threading.Thread(target=self._loop, args=(name, func), daemon=True)
            thread.name = f"sandbox-{name}"
            thread.start()
            self._threads.append(thread)
        return self

    def _workers(self) -> None:
        workers.step(self.market)

    def _webhooks(self) -> None:
        self.sender.send_due()

    def _loop(self, name: str, func) -> None:
        while not self._stop.wait(self.interval):
            try:
                func()
            except Exception:
                # A loop that dies silently would freeze the marketplace; keep going, but
                # count and log every failure so it shows in /_stats and the log.
                log.exception("sandbox %s loop failed; continuing", name)
                try:
                    self.market.store.bump(f"loop_errors_{name}")
                except Exception:
                    log.exception("could not count the failure")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.sender.close()


class _QuietHandler(WSGIRequestHandler):
    """No access log line per request: tests make thousands of them."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class RunningSandbox:
    """A sandbox serving in this process: its URL, its marketplace, and how to stop it."""

    base_url: str
    app: Flask
    server: BaseWSGIServer
    loops: Loops
    thread: threading.Thread
    _stopped: bool = field(default=False, repr=False)

    @property
    def market(self) -> Marketplace:
        return self.app.extensions[EXTENSION]

    def control(self, **values: Any) -> dict[str, Any]:
        """Change knobs at runtime (same validation as POST /_control)."""
        return self.market.set_options(values)

    def stats(self) -> dict[str, Any]:
        return self.market.stats()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.loops.stop()
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()
        self.market.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve(
    host: str,
    port: int,
    db_path: str | Path,
    options: dict[str, Any],
    quiet: bool = False,
):
    app = create_sandbox_app(db_path, **options)
    handler = _QuietHandler if quiet else None
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    base_url = f"http://{shown}:{server.port}"
    app.extensions[EXTENSION].base_url = base_url
    return app, server, base_url


def start_sandbox_in_thread(
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    loop_interval: float = 0.02,
    **options: Any,
) -> RunningSandbox:
    """Serve the sandbox from a thread (port 0 picks a free port); call .stop() when done."""
    app, server, base_url = _serve(host, port, db_path, options, quiet=True)
    loops = Loops(app.extensions[EXTENSION], interval=loop_interval).start()
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="sandbox-http", daemon=True
    )
    thread.start()
    return RunningSandbox(base_url, app, server, loops, thread)


def run_sandbox(
    host: str, port: int, db_path: str | Path, options: dict[str, Any] | None = None
) -> None:
    """Serve the sandbox until interrupted (the `dispatcher sandbox` command)."""
    app, server, base_url = _serve(host, port, db_path, dict(options or {}))
    market: Marketplace = app.extensions[EXTENSION]
    loops = Loops(market).start()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (docker stop, the e2e harness) shuts down as cleanly as Ctrl-C does
        signal.signal(signal.SIGTERM, _interrupt)
    print(f"sandbox marketplace on {base_url} (orders in {db_path})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        loops.stop()
        server.server_close()
        market.close()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
