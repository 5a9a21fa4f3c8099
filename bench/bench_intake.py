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
    def __init__(self, database_url: str | None):
        self.dir = Path(tempfile.mkdtemp(prefix="dispatcher-bench-intake-"))
        self.redis = RedisServer(self.dir / "redis")
        self.database_url, self.scratch = scratch_database(database_url, self.dir, "bench")
        self.floor_db = self.database_url if self.scratch else f"sqlite:///{self.dir / 'floor.db'}"
        self.ports = {"product": free_port(), "floor": free_port()}
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
        self.web = Proc("web", ["web", "--port", str(self.ports["product"])], self.env, self.logs)
        self.web.start()
        log = open(self.logs / "floor.log", "ab")  # noqa: SIM115 - lives with the process
        self.floor = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN,
             "--bind", f"127.0.0.1:{self.ports['floor']}", "bench.floors:create_webhook_app()"],
            env={**self.env, "FLOOR_DB": self.floor_db, "FLOOR_SECRET": self.secret},
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        for port in self.ports.values():
            wait_http(f"http://127.0.0.1:{port}/")

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

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        if self.floor is not None:
            self.floor.terminate()
            self.floor.wait(timeout=20)
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
        result = loadgen.open_loop(
            "127.0.0.1", self.ports[which], self.path, requests,
            rate=rate, connections=CONNECTIONS,
        )  # fmt: skip
        if result["errors"]:
            raise RuntimeError(f"{which}: {result}\n{self.tail(which)}")
        return result

    def tail(self, which: str) -> str:
        name = "web.log" if which == "product" else "floor.log"
        return "\n".join((self.logs / name).read_text(errors="replace").splitlines()[-20:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI: short and once")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.reps = 2, 1

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
