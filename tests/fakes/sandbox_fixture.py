"""Fixtures: the real sandbox marketplace on a loopback port, a webhook receiver, and a
SandboxAdapter pointed at the sandbox.

Import them into a conftest (``from fakes.sandbox_fixture import sandbox, ...``). The
sandbox runs with short delays so a whole take -> deliver cycle takes about 0.1 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.sandbox import SandboxAdapter
from dispatcher.config import Settings
from dispatcher.sandbox.server import RunningSandbox, start_sandbox_in_thread
from fakes.receiver import Receiver

SECRET = "whsec_c2FuZGJveC10ZXN0LXNlY3JldC1mb3ItZGlzcGF0Y2hlcg=="
FAST = {
    "take_delay": 0.05,
    "deliver_delay": 0.05,
    "webhook_retry_delay": 0.05,
    "webhook_timeout": 2.0,
    "stall_seconds": 0.5,
    "seed": 1234,
}


def make_settings(instance: Path, **overrides: Any) -> Settings:
    """Settings for an adapter under test, without building the whole app."""
    values: dict[str, Any] = {
        "instance_path": instance,
        "database_url": "sqlite://",
        "redis_url": "embedded",
        "secret_key": "test",
        "http_connect_timeout": 1.0,
        "http_read_timeout": 2.0,
        "testing": True,
    }
    values.update(overrides)
    return Settings(**values)


def start_sandbox(db_path: Path, **options: Any) -> RunningSandbox:
    return start_sandbox_in_thread(db_path, **{**FAST, **options})


def sandbox_account(base_url: str, name: str = "tests", secret: str | None = SECRET) -> str:
    """A new account at a running sandbox (its webhook secret registered); its API key."""
    response = requests.post(f"{base_url}/accounts", json={"name": name}, timeout=5)
    response.raise_for_status()
    key = response.json()["api_key"]
    if secret:
        response = requests.put(
            f"{base_url}/account/webhook",
            json={"url": "", "secret": secret},
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
        response.raise_for_status()
    return key


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy and return it; fail with a clear message if not."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


@pytest.fixture
def sandbox(tmp_path_factory) -> Iterator[RunningSandbox]:
    """A running sandbox marketplace (fresh SQLite file) on 127.0.0.1, stopped afterwards."""
    running = start_sandbox(tmp_path_factory.mktemp("sandbox") / "sandbox.db")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def sandbox_adapter(sandbox, tmp_path_factory) -> Iterator[SandboxAdapter]:
    settings = make_settings(tmp_path_factory.mktemp("instance"), sandbox_url=sandbox.base_url)
    adapter = SandboxAdapter(
        settings,
        credentials={"api_key": sandbox_account(sandbox.base_url), "webhook_secret": SECRET},
    )
    yield adapter
    adapter.session.close()
