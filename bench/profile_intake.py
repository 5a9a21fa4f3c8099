"""Where the web process's CPU goes on webhook intake: the product's own app, called in this
process through its WSGI interface (no server), storing signed sandbox events in a real
SQLite (or DATABASE_URL) and queueing their apply step on a real Redis.

CPU time is this process's, so the figure is per request of the app itself: gunicorn's own
share is not in it (the bench's floor runs under the same gunicorn and pays it alike).

    .venv/bin/python -m bench.profile_intake [--requests 2000] [--top 30] [--sort tottime]
    .venv/bin/python -m bench.profile_intake --top 0     # CPU per request, not profiled
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from bench.bench_intake import sandbox_webhook  # noqa: E402
from bench.stack import RedisServer, cli, drop_scratch, environment, scratch_database  # noqa: E402


def run(count: int, top: int, sort: str, callees: str = "", cpu_timer: bool = False) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="dispatcher-profile-intake-"))
    redis = RedisServer(workdir / "redis")
    database_url, scratch = scratch_database(os.environ.get("DATABASE_URL"), workdir, "bench")
    try:
        redis.start()
        env = environment(
            DISPATCHER_INSTANCE=str(workdir / "instance"),
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
        )
        cli(["db", "upgrade"], env)
        from dispatcher import create_app

        app = create_app(
            {"instance_path": workdir / "instance", "database_url": database_url,
             "redis_url": redis.url}
        )  # fmt: skip
        with app.app_context():
            path, secret = sandbox_webhook(app)
        client = app.test_client()

        def post(batch: list[tuple[str, str, str, str]]) -> None:
            for event_id, stamp, sig, body in batch:
                answer = client.post(
                    path,
                    data=body,
                    headers={"webhook-id": event_id, "webhook-timestamp": stamp,
                             "webhook-signature": sig, "content-type": "application/json"},
                )  # fmt: skip
                if answer.status_code >= 300:
                    raise RuntimeError(f"{answer.status_code}: {answer.get_data(as_text=True)}")

        post(loadgen.signed_requests(secret, 50))  # warm: imports, connections, caches
        batch = loadgen.signed_requests(secret, count)
        # the CPU clock leaves out the time spent waiting on the database and Redis
        profile = cProfile.Profile(time.process_time) if cpu_timer else cProfile.Profile()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if top or callees:
            profile.enable()
        post(batch)
        profile.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if top or callees:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).sort_stats(sort)
            stats.print_stats(top)
            if callees:
                stats.print_callees(callees)
            print(out.getvalue())
        per = cpu / count * 1000
        note = " (profiled: slower than unprofiled)" if top or callees else ""
        print(f"{count} webhooks: CPU {per:.2f} ms/request{note}; wall {wall / count * 1000:.2f} "
              "ms/request")  # fmt: skip
        return per
    finally:
        redis.stop()
        drop_scratch(database_url, scratch)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--callees", default="", help="print what functions matching this call")
    parser.add_argument("--cpu-timer", action="store_true",
                        help="profile CPU time, not wall time (waits on I/O left out)")  # fmt: skip
    args = parser.parse_args()
    run(args.requests, args.top, args.sort, args.callees, args.cpu_timer)


if __name__ == "__main__":
    main()
