"""Where a dispatch worker's CPU goes: the product's own worker class (AppWorker) run in this
process, in burst mode, under cProfile, placing orders at a real sandbox in another process.

CPU time is this process's (time.process_time), so other load on the machine changes the wall
time but hardly the figure. Prints CPU ms per job and the functions that take the most.

    .venv/bin/python -m bench.profile_dispatch [--jobs 300] [--top 25] [--sort tottime]
    .venv/bin/python -m bench.profile_dispatch --top 0     # CPU per job, not profiled
    .venv/bin/python -m bench.profile_dispatch --database-url postgresql+psycopg:///x --top 0

On PostgreSQL (`--database-url`, default $DATABASE_URL) a scratch database is made on that
server and dropped after; without one, a SQLite file.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_dispatch import Bench  # noqa: E402


def run(
    jobs: int,
    top: int,
    sort: str,
    callers: str = "",
    callees: str = "",
    database_url: str | None = None,
) -> float:
    bench = Bench(database_url or None)
    try:
        bench.start()
        from rq import Queue

        from dispatcher.dispatch import send, service
        from dispatcher.extensions import db
        from dispatcher.models import MicroJob
        from dispatcher.queues import DISPATCH
        from dispatcher.worker import AppWorker

        def batch(n: int) -> None:
            ids = bench.make_jobs(n)
            dispatches = [service.dispatch_job(db.session.get(MicroJob, i), commit=False)
                          for i in ids]  # fmt: skip
            db.session.commit()
            for d in [d.id for d in dispatches]:
                send.enqueue_send(d)
            db.session.remove()

        conn = bench.redis.client()
        AppWorker.flask_app = bench.app
        worker = AppWorker([Queue(DISPATCH, connection=conn)], connection=conn)
        batch(20)  # warm: imports, connections, caches
        worker.work(burst=True, logging_level="WARNING")
        batch(jobs)
        before = bench.orders()
        counts = _count_sql(db.engine)
        profile = cProfile.Profile()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if top or callers or callees:
            profile.enable()
        worker.work(burst=True, logging_level="WARNING")
        profile.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        placed = bench.orders() - before
        if top or callers or callees:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).sort_stats(sort)
            stats.print_stats(top)
            if callers:
                stats.print_callers(callers)
            if callees:
                stats.print_callees(callees)
            print(out.getvalue())
        per_job = cpu / max(placed, 1) * 1000
        note = " (profiled: slower than unprofiled)" if top or callers or callees else ""
        print(f"orders placed: {placed} of {jobs}; CPU {per_job:.2f} ms/job{note}; "
              f"wall {wall:.1f} s; per job: {counts['sql'] / max(placed, 1):.1f} SQL "
              f"statements, {counts['commit'] / max(placed, 1):.2f} commits")  # fmt: skip
        return per_job
    finally:
        bench.stop()


def _count_sql(engine) -> dict[str, int]:
    """Count the statements and commits the worker sends from now on."""
    from sqlalchemy import event

    counts = {"sql": 0, "commit": 0}

    def statement(*args) -> None:
        counts["sql"] += 1

    def commit(*args) -> None:
        counts["commit"] += 1

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--callers", default="", help="print who calls functions matching this")
    parser.add_argument("--callees", default="", help="print what functions matching this call")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL server to profile on (default $DATABASE_URL; empty: SQLite)",
    )
    args = parser.parse_args()
    run(args.jobs, args.top, args.sort, args.callers, args.callees, args.database_url)


if __name__ == "__main__":
    main()
