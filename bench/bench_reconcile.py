"""The reconciler's pass with a large backlog: N received webhooks, all queued in RQ for
longer than liveness.STALE_SECONDS (an inbound worker that has fallen behind), so the pass
must check that each job really is in its queue. Prints the pass's wall time and the Redis
CPU it used; medians of `--reps`. No floor: the target is under 1 s at 50,000.

    .venv/bin/python bench/bench_reconcile.py [--jobs 50000] [--reps 3]
    .venv/bin/python bench/bench_reconcile.py --quick     # CI: 5,000 jobs, 1 repetition
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import Row, median, publish  # noqa: E402
from bench.stack import RedisServer, drop_scratch, scratch_database  # noqa: E402


def redis_cpu(conn) -> float:
    info = conn.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def backlog(n: int) -> None:
    """`n` received webhooks in the database, each queued in RQ two minutes ago."""
    from rq import Queue
    from rq.utils import utcformat

    from dispatcher.extensions import db
    from dispatcher.inbound.apply import apply_inbound
    from dispatcher.inbound.queueing import APPLY_TIMEOUT
    from dispatcher.models import InboundEvent
    from dispatcher.queues import INBOUND, redis_connection

    db.session.execute(
        db.insert(InboundEvent),
        [
            {"adapter": "sandbox", "event_id": f"evt_{i}", "headers": {}, "body": "{}",
             "status": "received"}
            for i in range(n)
        ],
    )  # fmt: skip
    db.session.commit()
    ids = db.session.scalars(db.select(InboundEvent.id).order_by(InboundEvent.id)).all()
    conn = redis_connection()
    queue = Queue(INBOUND, connection=conn)
    old = utcformat(datetime.now(UTC) - timedelta(minutes=2))
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        with conn.pipeline() as pipe:
            queue.enqueue_many(
                [
                    Queue.prepare_data(apply_inbound, args=(i,), job_id=f"inbound-{i}",
                                       timeout=APPLY_TIMEOUT, result_ttl=0)
                    for i in chunk
                ],
                pipeline=pipe,
            )  # fmt: skip
            pipe.execute()
        with conn.pipeline(transaction=False) as pipe:
            for i in chunk:
                pipe.hset(f"rq:job:inbound-{i}", "enqueued_at", old)
            pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI: small and once")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.reps = 5_000, 1

    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-bench-reconcile-"))
    redis = RedisServer(tmp / "redis")
    database_url, scratch = scratch_database(os.environ.get("DATABASE_URL"), tmp, "bench")
    try:
        redis.start()
        from flask_migrate import upgrade

        from dispatcher import create_app
        from dispatcher.extensions import db
        from dispatcher.queues import redis_connection
        from dispatcher.reconcile import reconcile

        app = create_app(
            {"instance_path": tmp / "instance", "database_url": database_url,
             "redis_url": redis.url}
        )  # fmt: skip
        with app.app_context():
            upgrade()
            backlog(args.jobs)
            conn = redis_connection()
            walls, cpus = [], []
            for _ in range(args.reps):
                cpu = redis_cpu(conn)
                started = time.perf_counter()
                counts = reconcile()
                walls.append(time.perf_counter() - started)
                cpus.append(redis_cpu(conn) - cpu)
                if counts["inbound"]:
                    raise RuntimeError(f"the pass re-enqueued live jobs: {counts}")
            db.session.remove()
            db.engine.dispose()
        db_name = "PostgreSQL" if scratch else "SQLite"
        publish(
            "reconcile",
            [
                Row(
                    f"reconciler pass, {args.jobs} queued jobs",
                    median(walls),
                    "s",
                    None,
                    "< 1 s at 50,000",
                ),
                Row("Redis CPU of that pass", median(cpus), "s", None, None),
            ],  # fmt: skip
            f"{db_name}, {args.reps} rep(s)",
        )
    finally:
        redis.stop()
        drop_scratch(database_url, scratch)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
