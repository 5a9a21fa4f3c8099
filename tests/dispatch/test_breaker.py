"""The circuit breaker: opens, half-opens, closes; its state is shared through Redis."""

from __future__ import annotations

import pytest
import redis
from fakes.sandbox_fixture import make_settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatch.helpers import Scripted
from dispatch.test_classification import Probe
from dispatcher.dispatch.breaker import CircuitBreaker
from dispatcher.errors import CircuitOpen, RetryableAdapterError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def conn(redis_server):
    redis_server.flushall()
    yield redis_server
    redis_server.flushall()


def make(conn, clock, **kw) -> CircuitBreaker:
    return CircuitBreaker("probe", conn, threshold=3, reset_seconds=30, clock=clock, **kw)


def test_opens_after_consecutive_failures_and_fails_fast(conn, clock):
    breaker = make(conn, clock)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    breaker.before_call()  # two failures: still closed
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        breaker.before_call()
        breaker.record_failure()
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(30)
    assert isinstance(caught.value, RetryableAdapterError)
    assert breaker.snapshot().state == "open"


def test_half_open_lets_one_probe_through_and_its_success_closes(conn, clock):
    breaker = make(conn, clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 10
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call()
    assert caught.value.retry_after == pytest.approx(20)
    clock.now += 21
    assert breaker.snapshot().state == "half_open"
    breaker.before_call()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call()  # a second caller waits while the probe is out
    breaker.record_success()
    assert breaker.snapshot().state == "closed"
    breaker.before_call()
    breaker.before_call()


def test_a_failed_probe_opens_it_again(conn, clock):
    breaker = make(conn, clock)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 31
    breaker.before_call()  # the probe
    breaker.record_failure()
    snap = breaker.snapshot()
    assert snap.state == "open"
    assert snap.times_opened == 2
    with pytest.raises(CircuitOpen):
        breaker.before_call()


def test_a_probe_that_never_reports_frees_its_slot(conn, clock):
    breaker = make(conn, clock, probe_seconds=5)
    for _ in range(3):
        breaker.record_failure()
    clock.now += 31
    breaker.before_call()  # the probe's worker dies here
    with pytest.raises(CircuitOpen):
        breaker.before_call()
    clock.now += 6
    breaker.before_call()  # the next caller becomes the probe


def test_the_state_is_shared_by_every_client_of_the_redis(conn, clock):
    other = redis.Redis(unix_socket_path=conn.socket_file)  # another worker's connection
    try:
        mine, theirs = make(conn, clock), make(other, clock)
        for _ in range(3):
            theirs.record_failure()
        with pytest.raises(CircuitOpen):
            mine.before_call()
        clock.now += 31
        mine.before_call()  # this client probes...
        with pytest.raises(CircuitOpen):
            theirs.before_call()  # ...so that one waits
        mine.record_success()
        theirs.before_call()
        assert theirs.snapshot().state == mine.snapshot().state == "closed"
    finally:
        other.close()


def test_the_adapter_stops_calling_a_platform_that_is_down(conn, clock, tmp_path):
    server = Scripted(default=(503, {}, 0)).start()
    probe = Probe(make_settings(tmp_path, http_connect_timeout=0.5, http_read_timeout=0.5))
    probe.breaker = make(conn, clock)
    try:
        for _ in range(3):
            with pytest.raises(RetryableAdapterError):
                probe.call(server.url)
        assert server.hits == 3
        for _ in range(5):
            with pytest.raises(CircuitOpen):
                probe.call(server.url)
        assert server.hits == 3  # nothing more reached the platform
        server.default = (200, {}, 0)
        clock.now += 31
        assert probe.call(server.url).status_code == 200  # the probe succeeds
        assert probe.call(server.url).status_code == 200
        assert server.hits == 5
    finally:
        probe.session.close()
        server.stop()


def test_4xx_answers_do_not_count_as_an_outage(conn, clock, tmp_path):
    server = Scripted(default=(422, {}, 0)).start()
    probe = Probe(make_settings(tmp_path, http_connect_timeout=0.5, http_read_timeout=0.5))
    probe.breaker = make(conn, clock)
    try:
        for _ in range(5):
            with pytest.raises(Exception) as caught:
                probe.call(server.url)
            assert not isinstance(caught.value, CircuitOpen)
        assert probe.breaker.snapshot().state == "closed"
    finally:
        probe.session.close()
        server.stop()


def test_redis_down_lets_calls_through_without_asking_it_each_time(clock):
    dead = redis.Redis(unix_socket_path="/nonexistent/redis.sock", retry=Retry(NoBackoff(), 0))
    breaker = make(dead, clock)
    breaker.before_call()  # logged, not raised
    breaker.record_failure()
    dead.connection_pool.disconnect()
    assert breaker._redis_down()  # the next calls do not wait on Redis


def test_a_closed_healthy_breaker_runs_no_script_and_writes_nothing(conn, clock):
    """Issue 12: every platform call paid two Lua calls to a healthy breaker. Closed with no
    failures, a call costs one read; a failure is still counted and a success after it still
    resets the count."""

    def stats() -> dict[str, int]:
        info = conn.info("commandstats")
        return {
            name: info.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("evalsha", "eval", "hset", "hmget")
        }

    breaker = make(conn, clock)
    before = stats()
    for _ in range(5):
        breaker.before_call()
        breaker.record_success()
    after = stats()
    assert after["evalsha"] + after["eval"] == before["evalsha"] + before["eval"]
    assert after["hset"] == before["hset"]
    assert after["hmget"] - before["hmget"] == 5
    assert conn.exists(breaker.key) == 0
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.snapshot().failures == 2
    breaker.before_call()
    breaker.record_success()
    assert breaker.snapshot().failures == 0
