"""Dispatch worker against its floor: drain rate (1 and 2 workers), CPU per job, idle latency,
and RSS over many jobs.

The product: `dispatcher worker --queue dispatch` processes (as `dispatcher up` starts them)
placing orders at the sandbox marketplace (its simulated workers paused, so no webhooks
come back). The floor: bare `rq.SimpleWorker`s on the same Redis, each job one POST of the
adapter's body to the same sandbox with a shared `requests.Session` (bench/floors.py).
Product and floor runs alternate, medians of `--reps`.

    .venv/bin/python bench/bench_dispatch.py [--jobs 1000] [--reps 3] [--rss-jobs 10000]
    .venv/bin/python bench/bench_dispatch.py --quick      # CI: 200 jobs, 1 repetition
    .venv/bin/python bench/bench_dispatch.py --only latency --samples 30   # idle latency only
    .venv/bin/python bench/bench_dispatch.py --only drain --jobs 500 --reps 1   # drain only
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Row, median, percentile, publish  # noqa: E402
from bench.stack import (  # noqa: E402
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
FLOOR_QUEUE = "floor"
TIMEOUT = 300.0


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Bench:
    def __init__(self, database_url: str | None):
        self.dir = Path(tempfile.mkdtemp(prefix="dispatcher-bench-dispatch-"))
        self.redis = RedisServer(self.dir / "redis")
        self.database_url, self.scratch = scratch_database(database_url, self.dir, "bench")
        self.sandbox_port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.env = environment(
            DISPATCHER_INSTANCE=str(self.dir / "instance"),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
            SANDBOX_URL=self.sandbox_url,
            PUBLIC_BASE_URL="http://127.0.0.1:9",
        )
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.procs: list[Proc] = []
        self.floors: list[subprocess.Popen] = []
        self.app = None
        self.goal_seq = 0

    # -- processes ----------------------------------------------------------------------------
    def start(self) -> None:
        self.redis.start()
        cli(["db", "upgrade"], self.env)
        args = ["sandbox", "--port", str(self.sandbox_port)]
        sandbox = Proc("sandbox", args, self.env, self.logs)
        sandbox.start()
        self.procs.append(sandbox)
        wait_http(f"{self.sandbox_url}/_control")
        import requests

        requests.post(f"{self.sandbox_url}/_control", json={"pause_workers": True}, timeout=10)
        from dispatcher import create_app

        self.app = create_app(
            {
                "instance_path": self.dir / "instance",
                "database_url": self.database_url,
                "redis_url": self.redis.url,
                "sandbox_url": self.sandbox_url,
                "public_base_url": "http://127.0.0.1:9",
            }
        )
        self.ctx = self.app.app_context()
        self.ctx.push()
        from dispatcher import connections
        from dispatcher.extensions import db
        from dispatcher.models import Owner
        from dispatcher.sandbox import accounts

        owner = Owner(email="bench@example.com", name="Bench")
        owner.set_password("not used")
        db.session.add(owner)
        db.session.commit()
        self.owner_id = owner.id
        # the owner's own sandbox account: the product's connection and the floor share it
        self.api_key = accounts.sign_up(self.sandbox_url, "bench")
        connections.create(owner.id, "sandbox", "Sandbox", {"api_key": self.api_key})
        db.session.commit()

    def stop(self) -> None:
        self.stop_workers()
        for proc in self.procs:
            proc.stop()
        if self.app is not None:
            from dispatcher.extensions import db

            db.session.remove()
            db.engine.dispose()
            self.ctx.pop()
        self.redis.stop()
        drop_scratch(self.database_url, self.scratch)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_workers(self, count: int) -> tuple[list[int], list[int]]:
        """`count` product workers and `count` floor workers, idle and registered."""
        from rq import Worker

        product = []
        for i in range(count):
            proc = Proc(f"worker-{i}", ["worker", "--queue", "dispatch"], self.env, self.logs)
            proc.start()
            self.procs.append(proc)
            product.append(proc.pid)
        floor = []
        for _ in range(count):
            log = open(self.logs / "floor.log", "ab")  # noqa: SIM115 - lives with the process
            popen = subprocess.Popen(
                [sys.executable, "-m", "bench.floors", "worker", self.redis.url, FLOOR_QUEUE],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            log.close()
            self.floors.append(popen)
            floor.append(popen.pid)
        conn = self.redis.client()
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=conn)) < 2 * count:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not register")
            time.sleep(0.2)
        time.sleep(1.0)  # the product worker reconciles once at start
        return product, floor

    def stop_workers(self) -> None:
        for proc in self.procs[1:]:
            proc.stop()
        del self.procs[1:]
        for popen in self.floors:
            popen.terminate()
            popen.wait(timeout=20)
        self.floors.clear()

    # -- work ---------------------------------------------------------------------------------
    def make_jobs(self, n: int) -> list[int]:
        """A goal of `n` delegated leaves, ready to dispatch; their ids."""
        from dispatcher.extensions import db
        from dispatcher.planning import tree

        self.goal_seq += 1
        goal = tree.create_goal(
            self.owner_id, title=f"Bench {self.goal_seq}", budget_cents=n * PRICE
        )
        jobs = [
            tree.add_job(
                goal,
                title=f"Bench job {i + 1}",
                brief="Write one line.",
                price_cents=PRICE,
                mode="delegate",
                channel="sandbox",
                commit=False,
            )  # fmt: skip
            for i in range(n)
        ]
        db.session.commit()
        return [j.id for j in jobs]

    def floor_bodies(self, n: int) -> list[tuple[dict, str]]:
        """The sandbox adapter's order body (as `SandboxAdapter.dispatch` builds it)."""
        return [
            (
                {
                    "title": f"Bench job {i + 1}",
                    "brief": "Write one line.",
                    "acceptance_criteria": [],
                    "deliverable_kind": "text",
                    "price_cents": PRICE,
                    "currency": "USD",
                    "assignments": 1,
                    "callback_url": "http://127.0.0.1:9/webhooks/sandbox",
                    "client_ref": f"job-floor-{i}",
                    "due_date": None,
                },
                f"floor-{uuid.uuid4().hex}",
            )  # fmt: skip
            for i in range(n)
        ]

    def orders(self) -> int:
        with sqlite3.connect(self.dir / "instance" / "sandbox.db", timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]

    def order_times(self, keys: list[str]) -> dict[str, float]:
        with sqlite3.connect(self.dir / "instance" / "sandbox.db", timeout=30) as conn:
            marks = ",".join("?" * len(keys))
            rows = conn.execute(
                "SELECT idempotency_key, created_at FROM orders "
                f"WHERE idempotency_key IN ({marks})",
                keys,
            )
            return dict(rows.fetchall())

    def wait_orders(self, target: int, queue: str) -> None:
        from rq import Queue
        from rq.registry import StartedJobRegistry

        conn = self.redis.client()
        q = Queue(queue, connection=conn)
        started = StartedJobRegistry(queue, connection=conn)
        deadline = time.monotonic() + TIMEOUT
        while True:
            if self.orders() >= target and q.count == 0 and started.count == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{queue}: {self.orders()} orders of {target} in {TIMEOUT}s")
            time.sleep(0.02)

    def drain_product(self, n: int, pids: list[int]) -> tuple[float, float]:
        """(jobs/s, CPU ms per job) for `n` dispatches through the product's workers."""
        from dispatcher.dispatch import send, service
        from dispatcher.extensions import db
        from dispatcher.models import MicroJob

        ids = self.make_jobs(n)
        jobs = [db.session.get(MicroJob, i) for i in ids]
        dispatches = [service.dispatch_job(j, commit=False) for j in jobs]
        db.session.commit()
        dispatch_ids = [d.id for d in dispatches]
        before, cpu = self.orders(), sum(cpu_seconds(p) for p in pids)

        commands = self.redis_commands()
        started = time.perf_counter()
        for dispatch_id in dispatch_ids:
            send.enqueue_send(dispatch_id)
        self.wait_orders(before + n, "dispatch")
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p) for p in pids) - cpu
        commands = self.redis_commands() - commands
        db.session.remove()
        return n / elapsed, cpu / n * 1000, commands / n

    def drain_floor(self, n: int, pids: list[int]) -> tuple[float, float]:
        from bench.floors import post_order

        queue = self.floor_queue()
        bodies = self.floor_bodies(n)
        before, cpu = self.orders(), sum(cpu_seconds(p) for p in pids)
        commands = self.redis_commands()
        started = time.perf_counter()
        for body, key in bodies:
            queue.enqueue(
                post_order, f"{self.sandbox_url}/orders", body, key, self.api_key, result_ttl=0
            )
        self.wait_orders(before + n, FLOOR_QUEUE)
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(p) for p in pids) - cpu
        commands = self.redis_commands() - commands
        return n / elapsed, cpu / n * 1000, commands / n

    def pg_activity(self) -> dict[str, int] | None:
        """PostgreSQL's checkpoints and autovacuum/autoanalyze runs so far (None on SQLite):
        the floor never touches the database, so background writes during a product rep
        slow the product alone; the bench prints how many fell in each rep."""
        if not self.scratch:
            return None
        from sqlalchemy import text

        from dispatcher.extensions import db

        with db.engine.connect() as conn:
            checkpoints = conn.scalar(
                text("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
            )
            vacuums = conn.scalar(
                text("SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0) "
                     "FROM pg_stat_user_tables")
            )  # fmt: skip
        return {"checkpoints": int(checkpoints), "autovacuums": int(vacuums)}

    def redis_commands(self) -> int:
        """Commands Redis has processed so far (the bench's own polling included, alike for
        product and floor: a few per 20 ms)."""
        with self.redis.client() as conn:
            return int(conn.info("stats")["total_commands_processed"])

    def floor_queue(self):
        from rq import Queue

        return Queue(FLOOR_QUEUE, connection=self.redis.client())

    def latencies(self, samples: int) -> tuple[list[float], list[float]]:
        """Milliseconds from the dispatch request to the order at the platform, idle workers,
        product and floor alternating."""
        from bench.floors import post_order
        from dispatcher.dispatch import service
        from dispatcher.extensions import db
        from dispatcher.models import Dispatch, MicroJob

        ids = self.make_jobs(samples)
        queue = self.floor_queue()
        product_t0: dict[str, float] = {}
        floor_t0: dict[str, float] = {}
        for job_id, (body, key) in zip(ids, self.floor_bodies(samples), strict=True):
            job = db.session.get(MicroJob, job_id)
            t0 = time.time()
            dispatch = service.dispatch_job(job)  # commit, then enqueue
            product_t0[db.session.get(Dispatch, dispatch.id).idempotency_key] = t0
            db.session.remove()
            time.sleep(0.15)
            t0 = time.time()
            queue.enqueue(
                post_order, f"{self.sandbox_url}/orders", body, key, self.api_key, result_ttl=0
            )
            floor_t0[key] = t0
            time.sleep(0.15)
        time.sleep(1.0)
        placed = self.order_times([*product_t0, *floor_t0])
        product = [(placed[k] - t) * 1000 for k, t in product_t0.items() if k in placed]
        floor = [(placed[k] - t) * 1000 for k, t in floor_t0.items() if k in placed]
        if len(product) < samples or len(floor) < samples:
            raise RuntimeError(f"latency: {len(product)} / {len(floor)} of {samples} placed")
        return product, floor

    def rss(self, n: int, product: list[int], floor: list[int], batch: int) -> dict:
        """RSS (MB) of one product and one floor worker after a first batch and after `n`."""
        first = {"product": None, "floor": None}
        done = 0
        while done < n:
            self.drain_product(batch, product)
            self.drain_floor(batch, floor)
            done += batch
            if first["product"] is None:
                first = {"product": rss_mb(product[0]), "floor": rss_mb(floor[0])}
        return {
            "product_first": first["product"], "floor_first": first["floor"],
            "product_last": rss_mb(product[0]), "floor_last": rss_mb(floor[0]),
        }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--samples", type=int, default=40, help="idle-latency samples")
    parser.add_argument("--rss-jobs", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="CI: small and once")
    parser.add_argument(
        "--only",
        choices=("latency", "drain"),
        help="latency: idle latency only (1 worker); drain: drain rates and CPU only",
    )
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.reps, args.samples, args.rss_jobs = 200, 1, 10, 400

    bench = Bench(os.environ.get("DATABASE_URL"))
    rows: list[Row] = []
    try:
        bench.start()
        db_name = "PostgreSQL" if bench.scratch else "SQLite"
        if args.only == "latency":
            bench.start_workers(1)
            product, floor = bench.latencies(args.samples)
            for pct in (50, 95):
                print(f"  idle latency p{pct}: product {percentile(product, pct):.1f} ms, "
                      f"floor {percentile(floor, pct):.1f} ms", flush=True)  # fmt: skip
            return
        for count in (1, 2):
            product_pids, floor_pids = bench.start_workers(count)
            bench.drain_product(min(50, args.jobs), product_pids)  # warm up both
            bench.drain_floor(min(50, args.jobs), floor_pids)
            runs = {"product": [], "floor": []}
            for rep in range(args.reps):
                before = bench.pg_activity()
                runs["product"].append(bench.drain_product(args.jobs, product_pids))
                after = bench.pg_activity()
                runs["floor"].append(bench.drain_floor(args.jobs, floor_pids))
                background = (
                    ""
                    if before is None
                    else ", during the product: "
                    + ", ".join(f"{after[k] - before[k]} {k}" for k in before)
                )
                print(f"  {count} worker(s), rep {rep + 1}: product {runs['product'][-1][0]:.1f} "
                      f"jobs/s, floor {runs['floor'][-1][0]:.1f} jobs/s{background}",
                      flush=True)  # fmt: skip
            rate = {k: median(r[0] for r in v) for k, v in runs.items()}
            rows.append(Row(f"dispatch drain, {count} worker(s), {args.jobs} jobs", rate["product"],
                            "jobs/s", rate["floor"], ">= 0.8x floor"))  # fmt: skip
            if count == 1:
                cpu = {k: median(r[1] for r in v) for k, v in runs.items()}
                rows.append(Row("dispatch worker CPU per job", cpu["product"], "ms",
                                cpu["floor"], None))  # fmt: skip
                redis = {k: median(r[2] for r in v) for k, v in runs.items()}
                rows.append(Row("Redis commands per job (enqueue + run)", redis["product"], "",
                                redis["floor"], None))  # fmt: skip
            if count == 1 and args.only != "drain":
                product, floor = bench.latencies(args.samples)
                rows.append(Row("idle latency p50", percentile(product, 50), "ms",
                                percentile(floor, 50), "<= 2x floor"))  # fmt: skip
                rows.append(Row("idle latency p95", percentile(product, 95), "ms",
                                percentile(floor, 95), None))  # fmt: skip
                rss = bench.rss(args.rss_jobs, product_pids, floor_pids, min(1000, args.rss_jobs))
                rows.append(Row(f"worker RSS after {args.rss_jobs} jobs", rss["product_last"], "MB",
                                rss["floor_last"], None))  # fmt: skip
                rows.append(Row(f"worker RSS growth over {args.rss_jobs} jobs",
                                rss["product_last"] - rss["product_first"], "MB",
                                None, "<= 5 MB"))  # fmt: skip
            bench.stop_workers()
        if args.only:  # a partial table: printed, not published over the full one
            for row in rows:
                ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
                print(f"  {row.name}: {row.value:.2f} {row.unit}, floor {row.floor}, "
                      f"ratio {ratio}")  # fmt: skip
        else:
            publish("dispatch", rows, f"{db_name}, {args.reps} rep(s)")
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
