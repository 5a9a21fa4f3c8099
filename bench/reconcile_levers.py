"""Before/after of the reconciler's levers, in one process on one backlog: the old presence
check (a pipeline of one HMGET per job, RQ's strptime-based timestamps) with and without
hiredis, against the new one (a script call per 2,000 jobs, fromisoformat); whole reconcile()
passes over 50,000 queued jobs, medians of 3.

    .venv/bin/python bench/reconcile_levers.py                # old and new, with hiredis
    .venv/bin/python bench/reconcile_levers.py --no-hiredis   # old, pure-Python parser
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

if "--no-hiredis" in sys.argv:
    sys.modules["hiredis"] = None  # as if it were not installed: redis-py parses in Python

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOBS = 50_000


def old_fields(connection, job_ids: list[str]) -> list:
    from rq.job import Job

    pipe = connection.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(Job.key_for(job_id), "status", "origin", "enqueued_at")
    return pipe.execute()


def old_timestamp(rq_time: str) -> float:
    from rq.utils import utcparse

    return utcparse(rq_time).timestamp()


def main() -> None:
    import redis.utils
    from flask_migrate import upgrade

    from bench.bench_reconcile import backlog
    from bench.stack import RedisServer
    from dispatcher import create_app

    logging.disable(logging.INFO)
    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-reconcile-levers-"))
    server = RedisServer(tmp / "redis")
    server.start()
    try:
        app = create_app({"instance_path": tmp / "instance", "redis_url": server.url,
                          "database_url": f"sqlite:///{tmp}/db.sqlite"})  # fmt: skip
        with app.app_context():
            upgrade()
            backlog(JOBS)
            from dispatcher.dispatch import liveness
            from dispatcher.reconcile import reconcile

            variants = {"old": (old_fields, old_timestamp)}
            if "--no-hiredis" not in sys.argv:
                variants["new"] = (liveness._job_fields, liveness._timestamp)
            walls: dict[str, list[float]] = {name: [] for name in variants}
            for _ in range(3):
                for name, (fields, timestamp) in variants.items():
                    liveness._job_fields, liveness._timestamp = fields, timestamp
                    started = time.perf_counter()
                    counts = reconcile()
                    walls[name].append(time.perf_counter() - started)
                    if counts["inbound"]:
                        raise RuntimeError(f"the pass re-enqueued live jobs: {counts}")
        for name, values in walls.items():
            runs = ", ".join(f"{v:.2f}" for v in values)
            print(f"{name} check, hiredis {redis.utils.HIREDIS_AVAILABLE}: "
                  f"median {statistics.median(values):.2f} s ({runs})")  # fmt: skip
    finally:
        server.stop()


if __name__ == "__main__":
    main()
