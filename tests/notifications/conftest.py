"""Notifications: owners with jobs (the Today fixtures), a real SMTP server, and a loopback
HTTP server standing in for Slack's incoming webhook."""

from __future__ import annotations

import pytest
from fakes.receiver import Receiver
from fakes.smtp import inbox, smtp_port  # noqa: F401  (fixtures)
from today.conftest import flow, goal, login, owner, user_loader  # noqa: F401  (fixtures)


@pytest.fixture
def app_config(app_config, smtp_port):  # noqa: F811  (the fixture imported above)
    return {**app_config, "smtp_port": smtp_port, "public_base_url": "http://dispatcher.test"}


@pytest.fixture
def slack():
    receiver = Receiver(default_status=200).start()
    yield receiver
    receiver.stop()
