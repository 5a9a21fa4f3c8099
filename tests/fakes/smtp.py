"""A real SMTP server (aiosmtpd) on a loopback port that keeps what it is sent.

Fixtures for a test module: `from fakes.smtp import inbox, smtp_port  # noqa: F401`, then
point the app at it (`app_config` with "smtp_port": smtp_port).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller


class Inbox:
    """An aiosmtpd handler: `messages` as parsed, `envelopes` as (recipients, message).

    `delay` seconds before answering makes a slow server (to hold a sender mid-send)."""

    def __init__(self, delay: float = 0.0):
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[list[str], EmailMessage]] = []
        self.delay = delay
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)  # blocks aiosmtpd's loop: a slow server, on purpose
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def kinds(self) -> list[str]:
        """What each teammate mail was (its X-Dispatcher-Kind: brief, answer, revision...)."""
        return [m["X-Dispatcher-Kind"] for m in self.messages]

    def last(self, kind: str) -> EmailMessage:
        return [m for m in self.messages if m["X-Dispatcher-Kind"] == kind][-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_server(port: int, handler: Inbox | None = None) -> Iterator[Inbox]:
    """Serve `handler` (a new Inbox by default) on 127.0.0.1:`port` for the block."""
    handler = handler or Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def inbox(smtp_port) -> Iterator[Inbox]:
    with smtp_server(smtp_port) as handler:
        yield handler
