"""Issue 13: `dispatcher check` runs each connection's test call against the platform (the
sandbox over real HTTP), reports it, and fails on it only when asked to."""

from __future__ import annotations

import socket
import time

import pytest
from dispatch.helpers import make_owner
from fakes.connections import connect_sandbox
from fakes.sandbox_fixture import sandbox  # noqa: F401

from dispatcher.cli import main
from dispatcher.dispatch.breaker import breaker_for, breaker_key

REVOKED = "sbx_revoked-key-nobody-has-any-more-0000"


def rows_of(output: str) -> dict[str, list[str]]:
    """The connections table by connection label (labels here are one word)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("owner "))
    return {line.split()[1]: line.split() for line in lines[start + 2 :] if line.strip()}


@pytest.fixture
def owners(app, sandbox):  # noqa: F811
    ann, bob = make_owner("ann@example.com"), make_owner("bob@example.com")
    good = connect_sandbox(
        ann.id, sandbox.base_url, label="Good", options={"base_url": sandbox.base_url}
    )
    revoked = connect_sandbox(
        bob.id, label="Revoked", api_key=REVOKED, options={"base_url": sandbox.base_url}
    )
    return good, revoked


def test_each_connection_is_a_row_and_a_revoked_key_fails(app, owners):
    result = app.test_cli_runner().invoke(main, ["check"])
    assert result.exit_code == 0, result.output  # connections are reported, not required
    rows = rows_of(result.output)
    assert rows["Good"][:4] == ["ann@example.com", "Good", "sandbox", "ok"]
    assert "sandbox account" in " ".join(rows["Good"])
    assert rows["Revoked"][:4] == ["bob@example.com", "Revoked", "sandbox", "FAIL"]
    assert "401" in " ".join(rows["Revoked"])
    assert REVOKED not in result.output


def test_connections_required_makes_a_failed_test_call_fail_the_check(app, owners):
    result = app.test_cli_runner().invoke(main, ["check", "--connections-required"])
    assert result.exit_code == 1, result.output
    skipped = app.test_cli_runner().invoke(main, ["check", "--no-connections"])
    assert skipped.exit_code == 0 and "Revoked" not in skipped.output


def test_a_hung_platform_fails_fast_and_trips_no_breaker(app, sandbox):  # noqa: F811
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        owner = make_owner()
        port = listener.getsockname()[1]
        hung = connect_sandbox(
            owner.id, label="Hung", options={"base_url": f"http://127.0.0.1:{port}"}
        )
        breaker = breaker_for(breaker_key("sandbox", hung.id))
        started = time.monotonic()
        for _ in range(breaker.threshold + 1):  # more than enough failures to open it
            result = app.test_cli_runner().invoke(main, ["check", "--connection-timeout", "0.3"])
            assert rows_of(result.output)["Hung"][3] == "FAIL"
        assert time.monotonic() - started < (breaker.threshold + 1) * 3
        snapshot = breaker.snapshot()
        assert (snapshot.state, snapshot.failures) == ("closed", 0)
    finally:
        listener.close()
