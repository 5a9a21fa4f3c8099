"""The batch claim's plan and its cost per claim, with stale and with fresh statistics.

Why: a drain on PostgreSQL spent most of its database time in `send_batch.claim` when the
table's statistics were the ones a previous drain left (every dispatch placed, so the
planner expected about one pending row) and chose a plan that re-ran the choice of rows
for every row (issue 12). This script rebuilds that situation in a scratch database:
`--rows` dispatches of one channel, all placed, ANALYZEd (autovacuum off for the table, so
the statistics stay as they are), then `--pending` new pending ones. It prints the plan
(EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on SQLite) and the median and fastest
milliseconds per claim of `--size` rows, wall clock in this process (each claim rolled back,
so every one sees the same rows; the fastest is the figure least disturbed by other work on
a shared machine), then ANALYZEs and does it again.

    DATABASE_URL='postgresql+psycopg:///pgc_bench?host=/var/run/postgresql' \\
        .venv/bin/python bench/explain_claim.py
    .venv/bin/python bench/explain_claim.py          # SQLite
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import drop_scratch, scratch_database  # noqa: E402


class LocalClock:
    """This host's clock where the claim asks Redis's (no Redis here)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class Plans:
    """Runs EXPLAIN on the claim's UPDATE, on the same connection and transaction, just
    before the statement itself runs (which then finds the rows already taken: the caller
    rolls back)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.armed = False
        self.lines: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        if not self.armed or not statement.lstrip().upper().startswith(("UPDATE", "WITH")):
            return
        self.armed = False
        if self.engine.dialect.name == "postgresql":
            cursor.execute("EXPLAIN (ANALYZE, COSTS, TIMING) " + statement, parameters)
            self.lines = [row[0] for row in cursor.fetchall()]
        else:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            self.lines = [f"{row[1]:>3} {row[3]}" for row in cursor.fetchall()]


def seed(owner_rows: int, pending: int) -> list[int]:
    """`owner_rows` placed dispatches, ANALYZEd, then `pending` new pending ones (stale
    statistics); the pending ids."""
    from sqlalchemy import insert, select, text

    from dispatcher import connections
    from dispatcher.extensions import db
    from dispatcher.models import Dispatch, Owner
    from dispatcher.planning import tree

    owner = Owner(email="explain@example.com", name="Explain")
    owner.set_password("not used")
    db.session.add(owner)
    db.session.commit()
    connection, _ = connections.create(owner.id, "sandbox", "Sandbox", {"api_key": "k"})
    goal = tree.create_goal(owner.id, title="Explain", budget_cents=10**9)
    job = tree.add_job(goal, title="One job", price_cents=500, mode="delegate")
    db.session.commit()
    postgres = db.engine.dialect.name == "postgresql"
    if postgres:
        db.session.execute(text("ALTER TABLE dispatches SET (autovacuum_enabled = false)"))
    now = datetime.now(UTC)

    def rows(n: int, start: int, **fields) -> list[dict]:
        return [
            {"job_id": job.id, "adapter": "sandbox", "connection_id": connection.id,
             "idempotency_key": f"explain-{start + i}", **fields}
            for i in range(n)
        ]  # fmt: skip

    placed = {"state": "placed", "attempts": 1, "placed_at": now - timedelta(minutes=5),
              "external_id": "ord_x"}  # fmt: skip
    db.session.execute(insert(Dispatch), rows(owner_rows, 0, **placed))
    db.session.commit()
    analyze()
    db.session.execute(insert(Dispatch), rows(pending, owner_rows, state="pending", attempts=0))
    db.session.commit()
    return list(
        db.session.scalars(select(Dispatch.id).where(Dispatch.state == "pending").order_by("id"))
    )


def analyze() -> None:
    from sqlalchemy import text

    from dispatcher.extensions import db

    db.session.execute(text("ANALYZE dispatches" if _postgres() else "ANALYZE"))
    db.session.commit()


def _postgres() -> bool:
    from dispatcher.extensions import db

    return db.engine.dialect.name == "postgresql"


def measure(ids: list[int], size: int, claims: int, plans: Plans, *, beside: bool) -> dict:
    """The plan of one claim and the median ms of `claims` claims (each rolled back)."""
    from dispatcher.dispatch import send_batch
    from dispatcher.extensions import db

    clock = LocalClock()
    step = max(1, len(ids) // claims)
    asked = [ids[(i * step) % len(ids)] for i in range(claims)]
    plans.armed = True
    send_batch.claim(asked[0], size, clock, beside=beside)
    db.session.rollback()
    times, taken = [], []
    for dispatch_id in asked:
        started = time.perf_counter()
        claimed = send_batch.claim(dispatch_id, size, clock, beside=beside)
        times.append((time.perf_counter() - started) * 1000)
        taken.append(len(claimed))
        db.session.rollback()
    return {
        "plan": plans.lines,
        "ms": statistics.median(times),
        "min_ms": min(times),
        "rows": min(taken),
    }


def report(label: str, result: dict) -> None:
    median, fastest, rows = result["ms"], result["min_ms"], result["rows"]
    print(f"--- {label}: median {median:.2f} ms per claim, fastest {fastest:.2f} ms "
          f"(each claim took at least {rows} rows)")  # fmt: skip
    for line in result["plan"]:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="placed dispatches first")
    parser.add_argument("--pending", type=int, default=1000, help="then pending ones")
    parser.add_argument("--size", type=int, default=16, help="rows per claim (DISPATCH_BATCH)")
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="dispatcher-explain-"))
    database_url, scratch = scratch_database(os.environ.get("DATABASE_URL"), directory, "explain")
    try:
        from flask_migrate import upgrade
        from sqlalchemy import event

        from dispatcher import create_app
        from dispatcher.extensions import db

        app = create_app(
            {
                "instance_path": directory / "instance",
                "database_url": database_url,
                "redis_url": "redis://127.0.0.1:9",  # never called: LocalClock
            }
        )
        with app.app_context():
            upgrade()
            plans = Plans(db.engine)
            event.listen(db.engine, "before_cursor_execute", plans)
            ids = seed(args.rows, args.pending)
            print(f"{db.engine.dialect.name}: {args.rows} placed + {len(ids)} pending dispatches "
                  f"of one channel, claims of {args.size}")  # fmt: skip
            for stats in ("stale", "fresh"):
                if stats == "fresh":
                    analyze()
                for beside in (False, True):
                    result = measure(ids, args.size, args.claims, plans, beside=beside)
                    mode = "beside (any state)" if beside else "asked-for row due"
                    report(f"{stats} statistics, {mode}", result)
            db.session.remove()
            db.engine.dispose()
    finally:
        if args.keep:
            print(f"kept: {database_url}")
        else:
            drop_scratch(database_url, scratch)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
