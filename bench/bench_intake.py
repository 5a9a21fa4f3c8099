"""Webhook intake against its floor: rate at saturation (8 connections, wrk) and p99 at half
the floor's rate (an open-loop Python generator).

The product: `dispatcher web --workers 2` (gunicorn, as `dispatcher up` starts it) taking
signed sandbox events at POST /webhooks/sandbox (verify, store, enqueue the apply step; no
inbound worker runs, so nothing is applied). The floor: a bare Flask app under the same
gunicorn flags that verifies the same Standard Webhooks HMAC and inserts one row (SQLite in
WAL with synchronous=FULL, or the same PostgreSQL server). Product and floor alternate,
medians of `--reps`.

    .venv/bin/python bench/bench_intake.py [--seconds 5] [--reps 3]
    .venv/bin/python bench/bench_intake.py --quick      # CI: 2 s, 1 repetition
    .venv/bin/python bench/bench_intake.py --diagnose 350 [--null]
        # no table: open-loop runs at 350/s, each server's GC pauses against its slowest 1%
        # of requests, worker RSS; --null adds a trivial always-200 server (the generator's
        # own latency at that rate)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from bench.report import Row, median, publish  # noqa: E402
from bench.stack import (  # noqa: E402
    Proc,
    RedisServer,
    cli,
    drop_scratch,
    environment,
    free_port,
    scratch_database,
    tree_cpu_seconds,
    wait_http,
)


def sandbox_webhook(app) -> tuple[str, str]:
    """A bench owner with a sandbox connection, in `app`'s database (inside its app context):
    the webhook path its events are posted to and the secret they are signed with."""
    from dispatcher import connections
    from dispatcher.extensions import db
    from dispatcher.models import Owner

    owner = Owner(email="bench@example.com", name="Bench")
    owner.set_password("not used")
    db.session.add(owner)
    db.session.commit()
    connection, secret = connections.create(
        owner.id, "sandbox", "Sandbox", {"api_key": "sbx_bench-only"}
    )
    db.session.commit()
    return f"/webhooks/sandbox/{connection.webhook_path}", secret


CONNECTIONS = 8
#: the gunicorn flags and settings of `dispatcher web` (dispatcher/cli.py), given to the floor too
GUNICORN = ["--workers", "2", "--threads", "4", "--access-logfile", "-", "--graceful-timeout", "5",
            "--config", "python:dispatcher.ops.gunicorn_conf"]  # fmt: skip


class Bench:
    def __init__(self, database_url: str | None, *, gc_log: bool = False, null: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="dispatcher-bench-intake-"))
        self.redis = RedisServer(self.dir / "redis")
        self.database_url, self.scratch = scratch_database(database_url, self.dir, "bench")
        self.floor_db = self.database_url if self.scratch else f"sqlite:///{self.dir / 'floor.db'}"
        self.ports = {"product": free_port(), "floor": free_port()}
        #: a trivial always-200 server under the same flags: the generator's own latency
        self.null = null
        if null:
            self.ports["null"] = free_port()
        #: each server's GC pauses are written under dir/gc-<which> (dispatcher/ops/gc_pauses.py)
        self.gc_log = gc_log
        self.env = environment(
            DISPATCHER_INSTANCE=str(self.dir / "instance"),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis.url,
        )
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.web: Proc | None = None
        self.floor: subprocess.Popen | None = None
        #: web processes' CPU ms per request in each saturation run
        self.cpu: dict[str, list[float]] = {"product": [], "floor": []}

    def start(self) -> None:
        self.redis.start()
        cli(["db", "upgrade"], self.env)
        self.path, self.secret = self._connection()
        self.web = Proc("web", ["web", "--port", str(self.ports["product"])],
                        self._gc_env("product"), self.logs)  # fmt: skip
        self.web.start()
        floor_env = {**self._gc_env("floor"), "FLOOR_DB": self.floor_db,
                     "FLOOR_SECRET": self.secret}  # fmt: skip
        self.floor = self._gunicorn("floor", "bench.floors:create_webhook_app()", floor_env)
        self.others = []
        if self.null:
            self.others.append(self._gunicorn("null", "bench.floors:null_app", self.env))
        for port in self.ports.values():
            wait_http(f"http://127.0.0.1:{port}/")

    def _gc_env(self, which: str) -> dict[str, str]:
        if not self.gc_log:
            return self.env
        folder = self.dir / f"gc-{which}"
        folder.mkdir(exist_ok=True)
        return {**self.env, "DISPATCHER_GC_LOG": str(folder)}

    def _gunicorn(self, which: str, app: str, env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{which}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN,
             "--bind", f"127.0.0.1:{self.ports[which]}", app],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        return proc

    def _connection(self) -> tuple[str, str]:
        """An owner's sandbox connection in the product's database: the webhook path its
        events are posted to, and the secret they are signed with (the floor's too)."""
        from dispatcher import create_app
        from dispatcher.extensions import db

        app = create_app(
            {"instance_path": self.dir / "instance", "database_url": self.database_url,
             "redis_url": self.redis.url}
        )  # fmt: skip
        with app.app_context():
            path, secret = sandbox_webhook(app)
            db.session.remove()
            db.engine.dispose()
        return path, secret

    def stop_servers(self) -> None:
        """Stop the web servers (their workers write their GC pauses as they exit)."""
        if self.web is not None:
            self.web.stop()
            self.web = None
        for proc in [self.floor, *getattr(self, "others", [])]:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=20)
        self.floor, self.others = None, []

    def stop(self) -> None:
        self.stop_servers()
        self.redis.stop()
        drop_scratch(self.database_url, self.scratch)
        shutil.rmtree(self.dir, ignore_errors=True)

    def saturate(self, which: str, seconds: int) -> float:
        requests = loadgen.signed_requests(self.secret, max(4000, 3000 * seconds))
        path = loadgen.write_requests(self.dir / f"{which}.tsv", requests)
        pid = self.web.pid if which == "product" else self.floor.pid
        cpu0 = tree_cpu_seconds(pid)
        result = loadgen.wrk(
            f"http://127.0.0.1:{self.ports[which]}{self.path}",
            path, self.dir / "requests.lua", connections=CONNECTIONS, seconds=seconds,
        )  # fmt: skip
        cpu = tree_cpu_seconds(pid) - cpu0
        self.cpu[which].append(cpu * 1000 / max(1.0, result["rate"] * seconds))
        if result["errors"]:  # an answer other than 2xx is a broken benchmark
            raise RuntimeError(f"{which}: {result}\n{self.tail(which)}")
        if result["socket_errors"]:  # slow answers are a figure: say so, go on
            print(f"  {which}: socket errors {result['socket_errors']}", flush=True)
        return result["rate"]

    def at_rate(self, which: str, rate: float, seconds: int) -> dict:
        requests = loadgen.signed_requests(self.secret, int(rate * seconds))
        path = "/null" if which == "null" else self.path
        result = loadgen.open_loop(
            "127.0.0.1", self.ports[which], path, requests,
            rate=rate, connections=CONNECTIONS,
        )  # fmt: skip
        if result["errors"]:
            raise RuntimeError(f"{which}: {result}\n{self.tail(which)}")
        return result

    def tail(self, which: str) -> str:
        name = "web.log" if which == "product" else "floor.log"
        return "\n".join((self.logs / name).read_text(errors="replace").splitlines()[-20:])


def gc_pauses(folder: Path) -> list[tuple[float, int, float]]:
    """(start, generation, seconds) of every collection the servers' workers wrote there."""
    out = []
    for file in folder.glob("gc-*.tsv"):
        for line in file.read_text().splitlines():
            start, gen, seconds, _ = line.split("\t")
            out.append((float(start), int(gen), float(seconds)))
    return sorted(out)


def worker_rss_mb(pid: int) -> list[float]:
    import psutil

    return [c.memory_info().rss / 2**20 for c in psutil.Process(pid).children(recursive=True)]


def diagnose(bench: Bench, which: list[str], rate: float, seconds: int, reps: int) -> None:
    """Open-loop runs at `rate` (interleaved, `reps` each); then, per server, its GC pauses
    and how many of the slowest 1% of requests a pause of 2 ms or more overlapped."""
    runs: dict[str, list[dict]] = {w: [] for w in which}
    for _ in range(reps):
        for w in which:
            result = bench.at_rate(w, rate, seconds)
            runs[w].append(result)
            print(f"  {w}: p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                  f"rate {result['rate']:.0f}/s", flush=True)  # fmt: skip
    pids = {"product": bench.web.pid, "floor": bench.floor.pid}
    rss = {w: worker_rss_mb(pid) for w, pid in pids.items() if w in which}
    bench.stop_servers()
    for w in which:
        p99s = [r["p99_ms"] for r in runs[w]]
        print(f"\n{w}: p99 per run {', '.join(f'{p:.1f}' for p in p99s)} ms "
              f"(median {median(p99s):.1f}); worker RSS {rss.get(w, [])} MB")  # fmt: skip
        pauses = gc_pauses(bench.dir / f"gc-{w}")
        if not pauses:
            continue
        samples = [s for r in runs[w] for s in r["samples"]]
        t0, t1 = min(d for d, _ in samples), max(d + lat for d, lat in samples)
        during = [p for p in pauses if t0 <= p[0] <= t1]
        for gen in (0, 1, 2):
            ms = sorted(p[2] * 1000 for p in during if p[1] == gen)
            if ms:
                print(f"  gen {gen}: {len(ms)} collections, median {median(ms):.2f} ms, "
                      f"max {ms[-1]:.1f} ms, total {sum(ms):.0f} ms")  # fmt: skip
        long = [p for p in during if p[2] >= 0.002]
        cut = sorted(lat for _, lat in samples)[int(len(samples) * 0.99)]
        slow = [(d, lat) for d, lat in samples if lat >= cut]

        def hit(d: float, lat: float, long: list = long) -> bool:
            return any(p[0] < d + lat and p[0] + p[2] > d for p in long)

        hits = sum(hit(d, lat) for d, lat in slow)
        every = sum(hit(d, lat) for d, lat in samples)
        print(f"  slowest 1% (>= {cut * 1000:.1f} ms): {hits}/{len(slow)} overlap a GC pause "
              f">= 2 ms; all requests: {every}/{len(samples)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI: short and once")
    parser.add_argument(
        "--diagnose",
        type=float,
        metavar="RATE",
        help="no table: open-loop runs at RATE with GC pauses recorded",
    )
    parser.add_argument(
        "--null",
        action="store_true",
        help="with --diagnose: also a trivial always-200 server (the generator)",
    )
    args = parser.parse_args()  # fmt: skip
    if args.quick:
        args.seconds, args.reps = 2, 1
    if args.diagnose:
        bench = Bench(os.environ.get("DATABASE_URL"), gc_log=True, null=args.null)
        try:
            bench.start()
            which = ["product", "floor"] + (["null"] if args.null else [])
            for w in which:  # warm up
                bench.at_rate(w, args.diagnose, 1)
            diagnose(bench, which, args.diagnose, args.seconds, args.reps)
        finally:
            bench.stop()
        return

    bench = Bench(os.environ.get("DATABASE_URL"))
    try:
        bench.start()
        db_name = "PostgreSQL" if bench.scratch else "SQLite"
        bench.saturate("product", 1)  # warm up both
        bench.saturate("floor", 1)
        sat = {"product": [], "floor": []}
        for rep in range(args.reps):
            for which in ("product", "floor"):
                sat[which].append(bench.saturate(which, args.seconds))
            print(f"  saturation rep {rep + 1}: product {sat['product'][-1]:.0f} req/s, "
                  f"floor {sat['floor'][-1]:.0f} req/s", flush=True)  # fmt: skip
        rate = {k: median(v) for k, v in sat.items()}
        half = rate["floor"] / 2
        tail = {"product": [], "floor": []}
        for _ in range(args.reps):
            for which in ("product", "floor"):
                tail[which].append(bench.at_rate(which, half, args.seconds))
        p99 = {k: median(r["p99_ms"] for r in v) for k, v in tail.items()}
        achieved = {k: median(r["rate"] for r in v) for k, v in tail.items()}
        rows = [
            Row(f"webhook intake at saturation ({CONNECTIONS} connections)", rate["product"],
                "req/s", rate["floor"], ">= 0.7x floor"),
            Row(f"webhook p99 at half the floor's rate ({half:.0f}/s)", p99["product"], "ms",
                p99["floor"], "< 50 ms"),
            Row("webhook rate achieved at that rate", achieved["product"], "req/s",
                achieved["floor"], None),
            Row("web CPU per webhook at saturation", median(bench.cpu["product"][1:]), "ms",
                median(bench.cpu["floor"][1:]), None),
        ]  # fmt: skip
        publish("intake", rows, f"{db_name}, {args.reps} rep(s) of {args.seconds} s")
    finally:
        bench.stop()


if __name__ == "__main__":
    main()
