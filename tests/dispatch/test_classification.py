"""Outbound calls against a real loopback server: timeouts, 5xx, 429 + Retry-After, 4xx."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from fakes.sandbox_fixture import make_settings

from adapters.base import Adapter, JobSpec, Receipt
from dispatch.helpers import Scripted
from dispatcher.errors import AdapterError, RetryableAdapterError


class Probe(Adapter):
    """The smallest adapter: one GET through the contract's `request`."""

    name = "probe"
    title = "Probe"

    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        raise NotImplementedError

    def call(self, url: str):
        return self.request("GET", url)


@pytest.fixture
def server():
    scripted = Scripted().start()
    yield scripted
    scripted.stop()


@pytest.fixture
def probe(tmp_path):
    adapter = Probe(make_settings(tmp_path, http_connect_timeout=0.5, http_read_timeout=0.3))
    yield adapter
    adapter.session.close()


def test_a_read_timeout_is_retryable_and_bounded(server, probe):
    server.default = (200, {}, 1.5)
    started = time.monotonic()
    with pytest.raises(RetryableAdapterError, match="Timeout"):
        probe.call(server.url)
    assert time.monotonic() - started < 1.2  # the read timeout, not the server's 1.5 s


def test_a_refused_connection_is_retryable(probe):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(RetryableAdapterError, match="ConnectionError"):
            probe.call(f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable(server, probe, status):
    server.default = (status, {}, 0)
    with pytest.raises(RetryableAdapterError) as caught:
        probe.call(server.url)
    assert caught.value.status == status


def test_429_is_retryable_and_carries_retry_after_seconds(server, probe):
    server.default = (429, {"Retry-After": "7"}, 0)
    with pytest.raises(RetryableAdapterError) as caught:
        probe.call(server.url)
    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0


def test_retry_after_as_an_http_date(server, probe):
    when = datetime.now(UTC) + timedelta(seconds=30)
    server.default = (503, {"Retry-After": format_datetime(when, usegmt=True)}, 0)
    with pytest.raises(RetryableAdapterError) as caught:
        probe.call(server.url)
    assert 25 <= caught.value.retry_after <= 31


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_permanent(server, probe, status):
    server.default = (status, {}, 0)
    with pytest.raises(AdapterError) as caught:
        probe.call(server.url)
    assert not isinstance(caught.value, RetryableAdapterError)
    assert f"HTTP {status}" in str(caught.value)


def test_success_returns_the_response(server, probe):
    assert probe.call(server.url).status_code == 200
