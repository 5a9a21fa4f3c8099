"""Where the idle dispatch latency goes: the stages of one dispatch, from the owner's request
(`service.dispatch_job`) to the order at the sandbox, with idle workers, beside the floor's.

Why: bench_dispatch.py gives the end-to-end figure only (issue 12: the product at 3.5x the
floor); cutting it needs to know which stage costs what. Every stage end is a `time.time()`
stamp (comparable across processes on one machine): the request runs in this process, the
worker (the product's `AppWorker`, or the floor's bare `SimpleWorker`) in a child process
whose functions are wrapped to stamp; the last stamp is the order's `created_at` in the
sandbox. SQL statements (a before_cursor_execute listener) and Redis round trips (each
packed send) are counted per stage, on the thread that does the work only.

    .venv/bin/python -m bench.profile_latency [--samples 30]
    DATABASE_URL='postgresql+psycopg:///dispatcher_bench?host=/var/run/postgresql' \\
        .venv/bin/python -m bench.profile_latency

Prints one table per side: each stage's median milliseconds, statements and round trips.
The request's stages come first, then the worker's: the product's task is queued before the
request's commit (first_attempt.queue_early), so the worker's first stages overlap the
commit, and the wait for the token is what is left of it when the worker gets there.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAMPS_KEY = "profile-latency:stamps"
MAIN = threading.main_thread()

#: (letter, stage) of each stamp label; a stage ends at its stamp and starts at the one before
STAGES = {
    "lock_job": ("a", "lock_job (UPDATE ... RETURNING)"),
    "lock_and_read": ("a", "lock_and_read (lock, goal, connection, places)"),
    "check_delegable": ("a", "check_delegable (connection, adapter)"),
    "missing": ("a", "places.missing"),
    "open_places": ("a", "places.open_places + budget"),
    "flush": ("a", "session flush (ORM unit of work)"),
    "stage_order": ("a", "Dispatch insert (Core)"),
    "transition": ("a", "lifecycle.transition (Event)"),
    "move_job": ("a", "request_writes.move_job (job UPDATE, Event)"),
    "commit": ("a", "commit"),
    "enqueued": ("b", "enqueue_send"),
    "dequeued": ("c", "BLPOP wakeup + job fetch"),
    "mark_started": ("c", "RQ after the dequeue + liveness.mark_started"),
    "app_context": ("d", "app context + log binding"),
    "rq_prepared": ("c", "RQ prepare_job_execution (floor: + after dequeue)"),
    "task": ("d", "app context + job.perform until the task"),
    "token": ("d", "first-attempt token (GETDEL + connection version)"),
    "waited": ("d", "waiting for the token (task queued before the commit)"),
    "decode": ("e", "decode the carried call"),
    "carried_adapter": ("e", "adapter for the carried call (cached)"),
    "claim": ("d", "claim UPDATE ... RETURNING"),
    "preload": ("e", "preload job, places, connection"),
    "adapter": ("e", "guarded_adapter (build)"),
    "spec": ("e", "job_spec"),
    "claim_commit": ("d", "claim commit (leased: end of the read)"),
    "http": ("e", "_call until the HTTP send (breaker)"),
    "order": ("f", "HTTP POST until the order exists"),
}


class Recorder:
    """Stamps (label, time) and counts SQL statements and Redis round trips between them."""

    def __init__(self) -> None:
        self.marks: list[tuple[str, float, int, int]] = []
        self.sql = 0
        self.redis = 0
        self.armed = False
        self.statements: list[str] | None = None  # --sql: the request's statements

    def mark(self, label: str) -> None:
        if self.armed and threading.current_thread() is MAIN:
            self.marks.append((label, time.time(), self.sql, self.redis))

    def once(self, label: str) -> None:
        if all(m[0] != label for m in self.marks):
            self.mark(label)

    def count_sql(self, _conn, _cursor, statement, *_args) -> None:
        if self.armed and threading.current_thread() is MAIN:
            self.sql += 1
            if self.statements is not None:
                label = self.marks[-1][0] if self.marks else ""
                self.statements.append(f"after {label}: {' '.join(statement.split())[:150]}")

    def install(self) -> None:
        """Count statements on every engine and round trips on every Redis connection."""
        import redis.connection
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self.count_sql)
        cls = redis.connection.AbstractConnection
        send = cls.send_packed_command

        def counted(conn, *args, **kwargs):
            if self.armed and threading.current_thread() is MAIN:
                self.redis += 1
            return send(conn, *args, **kwargs)

        cls.send_packed_command = counted

    def start(self) -> None:
        self.marks, self.sql, self.redis, self.armed = [], 0, 0, True
        self.mark("start")

    def take(self) -> list[tuple[str, float, int, int]]:
        marks, self.armed = self.marks, False
        self.marks = []
        return marks


REC = Recorder()


def stamp_after(owner, name: str, label: str, *, first: bool = False) -> None:
    """Wrap `owner.name` so that it stamps `label` when it returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        (REC.once if first else REC.mark)(label)
        return result

    setattr(owner, name, wrapped)


def stamp_before(owner, name: str, label: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapped(*args, **kwargs):
        REC.once(label)
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


# -- the worker side (a child process) ------------------------------------------------------
def instrument_worker(worker_cls) -> None:
    """Stamp RQ's dequeue and bookkeeping, and the HTTP send; publish each job's stamps after it."""
    import requests
    from rq import Queue

    REC.install()
    original_dequeue = Queue.dequeue_any.__func__

    def dequeue_any(cls, *args, **kwargs):
        result = original_dequeue(cls, *args, **kwargs)
        if result is not None and threading.current_thread() is MAIN:
            REC.start()  # the previous stamp is the enqueue, in the other process
            REC.marks.clear()
            REC.mark("dequeued")
        return result

    Queue.dequeue_any = classmethod(dequeue_any)
    stamp_after(worker_cls, "prepare_job_execution", "rq_prepared")
    stamp_before(requests.Session, "send", "http")
    original_perform = worker_cls.perform_job

    def perform_job(self, job, *args, **kwargs):
        try:
            return original_perform(self, job, *args, **kwargs)
        finally:
            marks = REC.take()
            self.connection.rpush(STAMPS_KEY, json.dumps({"job": job.id, "marks": marks}))

    worker_cls.perform_job = perform_job


def product_worker() -> None:
    """`dispatcher worker --queue dispatch`, stamped (settings from the environment)."""
    from dispatcher import create_app
    from dispatcher.dispatch import carried, first_attempt, liveness, send, send_batch
    from dispatcher.ops import logs
    from dispatcher.worker import AppWorker, run_worker

    instrument_worker(AppWorker)
    stamp_after(liveness, "mark_started", "mark_started")
    stamp_after(logs, "bind_rq_job", "app_context")
    stamp_before(send, "_claim_and_prepare", "task")
    stamp_after(first_attempt, "take", "token", first=True)
    stamp_after(first_attempt, "wait", "waited", first=True)
    stamp_after(carried, "decode", "decode", first=True)
    stamp_after(carried, "adapter", "carried_adapter", first=True)
    stamp_after(send_batch, "claim", "claim", first=True)
    stamp_after(send_batch, "preload", "preload", first=True)
    stamp_after(send_batch, "preload_leased", "preload", first=True)
    stamp_after(send, "guarded_adapter", "adapter", first=True)
    stamp_after(send, "job_spec", "spec", first=True)
    stamp_after(send_batch, "commit_keeping", "claim_commit", first=True)
    app = create_app()
    run_worker(app, ["dispatch"])


def floor_worker(redis_url: str, queue: str) -> None:
    from rq import SimpleWorker

    import bench.floors

    instrument_worker(SimpleWorker)
    stamp_before(bench.floors, "post_order", "task")
    bench.floors.worker(redis_url, queue)


# -- the request side (this process) --------------------------------------------------------
def instrument_request() -> None:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from dispatcher import lifecycle
    from dispatcher.dispatch import first_attempt, places, request_writes, service

    REC.install()
    stamp_after(service, "lock_job", "lock_job")
    stamp_after(service, "lock_and_read", "lock_and_read")
    stamp_after(service, "check_delegable", "check_delegable")
    stamp_after(places, "missing", "missing")
    stamp_after(places, "open_places", "open_places")
    from dispatcher.extensions import db

    stamp_after(type(db.session), "flush", "flush")
    stamp_after(lifecycle, "transition", "transition")
    stamp_after(request_writes, "stage_order", "stage_order")
    stamp_after(request_writes, "move_job", "move_job")
    event.listen(Session, "after_commit", lambda *a: REC.once("commit"))
    stamp_after(service, "enqueue_send", "enqueued")
    stamp_after(first_attempt, "hand_over", "enqueued")


def spawn(bench, args: list[str]) -> subprocess.Popen:
    log = open(bench.logs / "profile-worker.log", "ab")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.profile_latency", "worker", *args],
        env=bench.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    log.close()
    return proc


def wait_registered(bench, count: int) -> None:
    from rq import Worker

    deadline = time.monotonic() + 60
    while len(Worker.all(connection=bench.redis.client())) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the worker did not register")
        time.sleep(0.2)
    time.sleep(1.0)  # the product worker reconciles once at start


def collect(bench, expected: int) -> dict[str, list]:
    conn = bench.redis.client()
    deadline = time.monotonic() + 30
    while conn.llen(STAMPS_KEY) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    found = [json.loads(raw) for raw in conn.lrange(STAMPS_KEY, 0, -1)]
    conn.delete(STAMPS_KEY)
    return {f["job"]: f["marks"] for f in found}


def product_sample(bench, job_id: int) -> tuple[list, str, str]:
    """One dispatch request: its stamps, its RQ job id, its idempotency key."""
    from dispatcher.dispatch import send, service
    from dispatcher.extensions import db
    from dispatcher.models import Dispatch, MicroJob

    job = db.session.get(MicroJob, job_id)
    REC.start()
    dispatch = service.dispatch_job(job)
    request = REC.take()
    key = db.session.get(Dispatch, dispatch.id).idempotency_key
    db.session.remove()
    return request, send.send_job_id(dispatch.id), key


def floor_sample(bench, queue, body: dict, key: str) -> tuple[list, str, str]:
    """One bare enqueue of the floor's job."""
    from bench.floors import post_order

    REC.start()
    job = queue.enqueue(
        post_order, f"{bench.sandbox_url}/orders", body, key, bench.api_key, result_ttl=0
    )
    REC.mark("enqueued")
    return REC.take(), job.id, key


def measure(bench, samples: int) -> tuple[list[list], list[list]]:
    """Product and floor samples alternating (as bench_dispatch does), workers idle."""
    product, floor = [], []
    queue = bench.floor_queue()  # one Redis client, as the product's
    for job_id, (body, key) in zip(
        bench.make_jobs(samples), bench.floor_bodies(samples), strict=True
    ):
        product.append(product_sample(bench, job_id))
        time.sleep(0.15)
        floor.append(floor_sample(bench, queue, body, key))
        time.sleep(0.15)
    time.sleep(0.5)
    worker = collect(bench, 2 * samples)
    return join(bench, product, worker), join(bench, floor, worker)


def join(bench, runs, worker: dict[str, list]) -> list[list]:
    """Each sample's whole stamp list: the request's, the worker's, then the order."""
    placed = bench.order_times([key for _, _, key in runs])
    joined = []
    for request, job_id, key in runs:
        if job_id not in worker or key not in placed:
            continue
        marks = _until_the_call(worker[job_id])
        last = marks[-1]
        joined.append([*request, *marks, ["order", placed[key], last[2], last[3]]])
    return joined


def _until_the_call(marks: list) -> list:
    """The worker's stamps up to its HTTP send: what a task does after the call (a carried
    call reads the dispatch then, to record the placement) is off the way to the order."""
    labels = [m[0] for m in marks]
    return marks[: labels.index("http") + 1] if "http" in labels else marks


def table(title: str, samples: list[list]) -> float:
    """Print the median ms, statements and round trips of each stage; return the total."""
    rows: dict[str, list[tuple[float, int, int]]] = {}
    totals = []
    for marks in samples:
        previous = marks[0]
        carry_sql = carry_redis = 0
        for label, at, sql, rounds in marks[1:]:
            if label == "dequeued":  # the worker's counters start again
                carry_sql, carry_redis = previous[2], previous[3]
            ms = (at - previous[1]) * 1000
            sql_n = sql + (carry_sql if label != "dequeued" else 0) - previous[2]
            redis_n = rounds + (carry_redis if label != "dequeued" else 0) - previous[3]
            if label == "dequeued":
                sql_n, redis_n = 0, 0
            rows.setdefault(label, []).append((ms, sql_n, redis_n))
            previous = (label, at, sql + carry_sql, rounds + carry_redis)
        totals.append((marks[-1][1] - marks[0][1]) * 1000)
    print(f"\n{title} ({len(samples)} samples, medians)")
    print(f"  {'':2} {'stage':44} {'ms':>7} {'SQL':>4} {'Redis':>5}")
    for label, values in rows.items():
        letter, name = STAGES.get(label, ("?", label))
        ms = statistics.median(v[0] for v in values)
        sql = statistics.median(v[1] for v in values)
        rounds = statistics.median(v[2] for v in values)
        print(f"  {letter:2} {name:44} {ms:7.2f} {sql:4.0f} {rounds:5.0f}")
    total = statistics.median(totals)
    print(f"  {'':2} {'total (request to order), p50':44} {total:7.2f}")
    return total


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        if sys.argv[2] == "product":
            product_worker()
        else:
            floor_worker(sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--sql", action="store_true", help="print one request's statements")
    args = parser.parse_args()

    from bench.bench_dispatch import FLOOR_QUEUE, Bench

    bench = Bench(os.environ.get("DATABASE_URL"))
    workers = []
    try:
        bench.start()
        instrument_request()
        workers.append(spawn(bench, ["product"]))
        workers.append(spawn(bench, ["floor", bench.redis.url, FLOOR_QUEUE]))
        wait_registered(bench, 2)
        measure(bench, 3)  # warm both up
        if args.sql:
            REC.statements = []
            product_sample(bench, bench.make_jobs(1)[0])
            print("\n".join(REC.statements))
            REC.statements = None
        product, floor = measure(bench, args.samples)
        db_name = "PostgreSQL" if bench.scratch else "SQLite"
        p = table(f"product, {db_name}", product)
        f = table(f"floor, {db_name}", floor)
        print(f"\n  ratio {p / f:.2f}x")
    finally:
        for proc in workers:
            proc.terminate()
            proc.wait(timeout=20)
        bench.stop()


if __name__ == "__main__":
    main()
