"""One scheduler at a time (issue 13): the lease, the tick, and two real scheduler
processes where the holder is killed and the other takes over within seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from rq import Queue

from dispatcher import scheduler
from dispatcher.ops.lease import Lease
from dispatcher.periodic import Periodic
from dispatcher.queues import MAINTENANCE, SLOW, redis_connection


def noop() -> None:
    """A periodic job for the tests."""


def other_noop() -> None:
    """Another one, for the slow queue."""


def test_only_one_holder_until_it_stops_renewing(app):
    conn = redis_connection()
    first, second = Lease(conn, "t", 0.5, "a"), Lease(conn, "t", 0.5, "b")
    assert first.hold() and not second.hold()
    assert first.hold()  # renewed
    time.sleep(0.7)  # the first holder stops renewing (died)
    assert second.hold() and not first.hold()
    second.release()
    assert first.hold()


def test_a_tick_enqueues_each_due_job_once(app):
    conn = redis_connection()
    jobs = [Periodic(noop, 60), Periodic(other_noop, 3600, SLOW)]
    assert len(scheduler.tick(app, conn, jobs)) == 2
    assert scheduler.tick(app, conn, jobs) == []  # not due again yet
    assert Queue(MAINTENANCE, connection=conn).count == 1
    assert Queue(SLOW, connection=conn).count == 1


def test_the_digest_goes_to_the_slow_queue():
    from dispatcher.periodic import periodic_jobs

    queues = {p.func.__name__: p.queue for p in periodic_jobs()}
    assert queues["send_digests"] == SLOW
    assert queues["reconcile"] == MAINTENANCE


@pytest.mark.e2e
def test_a_killed_scheduler_is_replaced_within_seconds(app, app_config, tmp_path):
    conn = redis_connection()
    settings = app.config["SETTINGS"]
    env = {
        **os.environ,
        "DISPATCHER_INSTANCE": str(tmp_path / "host"),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
    }
    cmd = [sys.executable, "-m", "dispatcher.cli", "scheduler"]
    procs = [subprocess.Popen(cmd, env=env) for _ in range(2)]
    lease = Lease(conn, "scheduler", 1)
    try:
        holder = _wait_for(lambda: lease.holder(), 30)
        pids = {p.pid: p for p in procs}
        first = int(holder.split(":")[1])
        assert first in pids
        assert _wait_for(lambda: conn.hlen(scheduler.LAST_RUN_KEY) > 0, 10)
        reconciles = [j for j in Queue(MAINTENANCE, connection=conn).job_ids if "reconcile" in j]
        assert len(reconciles) == 1  # two schedulers, one enqueue
        pids[first].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        other = _wait_for(lambda: _pid_of(lease.holder(), exclude=first), 15)
        taken_after = time.monotonic() - killed_at
        assert other in pids and other != first
        assert taken_after < scheduler.LEASE_SECONDS + 3
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=15)


def _pid_of(holder: str | None, exclude: int) -> int | None:
    if not holder:
        return None
    pid = int(holder.split(":")[1])
    return pid if pid != exclude else None


def _wait_for(probe, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"nothing after {seconds}s")
