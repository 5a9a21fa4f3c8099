"""Notifications: owners with jobs (the Today fixtures), a real SMTP server, and a loopback
HTTP server standing in for Slack's incoming webhook."""

from __future__ import annotations

import pytest
from fakes.receiver import Receiver
from fakes.smtp import inbox, smtp_port  # noqa: F401  (fixtures)
from today.conftest import flow, goal, login, owner, user_loader  # noqa: F401  (fixtures)


@pytest.fixture
def app_config(app_config, smtp_port):  # noqa: F811  (the fixture imported above)
    # the loopback server standing in for Slack, and Slack's host (no DNS in tests), are
    # allowed by name, as an operator would
    return {**app_config, "smtp_port": smtp_port, "public_base_url": "http://dispatcher.test",
            "outbound_allowlist": ("127.0.0.1", "hooks.slack.com")}  # fmt: skip


@pytest.fixture
def slack():
    receiver = Receiver(default_status=200).start()
    yield receiver
    receiver.stop()
