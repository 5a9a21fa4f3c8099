"""Issue 13: the dispatch lease is written and judged on Redis's clock, not the host's.

Two workers on hosts whose clocks differ by ten minutes: with the host's clock, the one ahead
took a dispatch the other still held (its lease looked expired), and the one behind waited
the skew before taking a dispatch that was due."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dispatch.helpers import delegated, staged
from dispatcher.dispatch import backoff, send
from dispatcher.queues import redis_connection
from dispatcher.redis_clock import SharedClock

SKEW = 300.0  # seconds each host is off, in opposite directions


class HostClock:
    """A host's wall clock: the real one, off by `skew`, and moved on by `advance`."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def __call__(self) -> float:
        return time.time() + self.skew

    def advance(self, seconds: float) -> None:
        self.skew += seconds


@pytest.fixture
def hosts(app):
    """Two workers' clocks, one ahead and one behind, both reading the app's Redis."""
    conn = redis_connection()
    pairs = []
    for host in (HostClock(+SKEW), HostClock(-SKEW)):
        clock = SharedClock(conn, host_time=host, ttl=3600)
        clock.now()  # the offset is measured once; `advance` then stands for time passing
        pairs.append((host, clock))
    return pairs


def test_skewed_hosts_never_hold_the_same_dispatch(goal, hosts):
    (_, ahead), (_, behind) = hosts
    first = staged(delegated(goal))
    second = staged(delegated(goal))
    assert send.claim(first.id, clock=behind) is not None
    assert send.claim(first.id, clock=ahead) is None  # the lease has not run out anywhere
    assert send.claim(second.id, clock=ahead) is not None
    assert send.claim(second.id, clock=behind) is None


def test_the_host_behind_takes_a_run_out_lease_without_waiting_the_skew(app, goal, hosts):
    (ahead_host, ahead), (behind_host, behind) = hosts
    dispatch = staged(delegated(goal))
    claimed = send.claim(dispatch.id, clock=ahead)
    assert claimed is not None
    held = backoff.lease(app.config["SETTINGS"]).total_seconds()
    # Just before the lease ends neither host may take it; just after, both may.
    for host in (ahead_host, behind_host):
        host.advance(held - 2)
    assert send.claim(dispatch.id, clock=behind) is None
    for host in (ahead_host, behind_host):
        host.advance(3)
    again = send.claim(dispatch.id, clock=behind)
    assert again is not None and again.attempts == 2
    # The lease it wrote ends a lease from Redis's now, not ten minutes off.
    assert abs((again.next_attempt_at - behind.now()).total_seconds() - held) < 2
    assert abs((ahead.now() - behind.now()).total_seconds()) < 1


def test_a_claim_costs_at_most_one_redis_time_call(goal):
    conn = redis_connection()
    clock = SharedClock(conn, ttl=0)  # no caching at all: the worst case
    cached = SharedClock(conn)  # the default: offset kept for a few seconds
    ids = [staged(delegated(goal)).id for _ in range(6)]

    def time_calls() -> int:
        return conn.info("commandstats").get("cmdstat_time", {}).get("calls", 0)

    before = time_calls()
    for dispatch_id in ids[:3]:
        assert send.claim(dispatch_id, clock=clock) is not None
    assert time_calls() - before == 3
    before = time_calls()
    for dispatch_id in ids[3:]:
        assert send.claim(dispatch_id, clock=cached) is not None
    assert time_calls() - before == 1


def test_reschedule_waits_by_the_clock_the_lease_was_written_on(hosts):
    (_, ahead), _ = hosts
    now = ahead.now()
    retry = backoff.reschedule(now + timedelta(seconds=30), now)
    assert 29 <= retry.intervals[0] <= 31
