"""JSON import of a 2,000-job goal tree (the one bench_goal_tree.py builds, in every stage),
exported and imported again as a new goal: time and SQL statements, medians of `--reps`.
No floor: the target is under 1 s. The CPU time is printed too: on a shared machine it shows
the work when the wall time shows the neighbours.

    .venv/bin/python bench/bench_import.py [--jobs 2000] [--reps 3]
    .venv/bin/python bench/bench_import.py --quick      # CI: 300 jobs, 1 repetition
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_goal_tree import build, counting  # noqa: E402
from bench.report import Row, median, publish  # noqa: E402
from bench.stack import drop_scratch, scratch_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI: small and once")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.reps = 300, 1

    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-bench-import-"))
    database_url, scratch = scratch_database(os.environ.get("DATABASE_URL"), tmp, "bench")
    try:
        from flask_migrate import upgrade

        from dispatcher import connections, create_app
        from dispatcher.extensions import db
        from dispatcher.models import Owner
        from dispatcher.planning import transfer, tree
        from dispatcher.today import local_today

        app = create_app({"instance_path": tmp / "instance", "database_url": database_url})
        with app.app_context():
            upgrade()
            owner = Owner(email="bench@example.com", name="Bench", timezone="UTC")
            owner.set_password("bench-pass")
            db.session.add(owner)
            db.session.commit()
            # delegated jobs use the owner's sandbox connection (no call is ever made here)
            connections.create(owner.id, "sandbox", "Sandbox", {"api_key": "sbx_bench-only"})
            db.session.commit()
            goal = tree.create_goal(owner.id, title="Bench goal", budget_cents=10_000_000)
            build(goal, args.jobs, local_today(owner))
            data = transfer.export_goal(goal)
            owner_id = owner.id
            db.session.remove()
            times, cpu, statements, jobs = [], [], [], 0
            for _ in range(args.reps):
                with counting(db.engine) as counter:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    result = transfer.import_goal(owner_id, data)
                    times.append(time.perf_counter() - started)
                    cpu.append(time.process_time() - cpu_started)
                statements.append(counter.count)
                jobs = result.jobs
                db.session.remove()
            db.engine.dispose()
        db_name = "PostgreSQL" if scratch else "SQLite"
        publish(
            "import",
            [
                Row(f"JSON import of a {jobs}-job tree", median(times), "s", None, "< 1 s"),
                Row("CPU time of that import (this process)", median(cpu), "s", None, None),
                Row("SQL statements of that import", median(statements), "", None, None),
            ],
            f"{db_name}, {args.reps} rep(s)",
        )
    finally:
        drop_scratch(database_url, scratch)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
