"""Where the CPU of a JSON import goes: the 2,000-job tree of bench_import.py, exported and
imported again under cProfile, on SQLite or (with DATABASE_URL) on a scratch PostgreSQL database.

CPU time is this process's (time.process_time), so other load on the machine changes the wall
time but hardly the figure. Prints CPU, wall, SQL statements by kind, and the functions that
take the most.

    .venv/bin/python -m bench.profile_import [--jobs 2000] [--top 30] [--sort tottime]
    .venv/bin/python -m bench.profile_import --top 0      # figures only, not profiled
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
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_goal_tree import build  # noqa: E402
from bench.stack import drop_scratch, scratch_database  # noqa: E402


def _kind(statement: str) -> str:
    words = statement.split()
    head = " ".join(words[:3]).upper() if words else ""
    return head[:60]


def run(jobs: int, top: int, sort: str, callers: str = "") -> None:
    tmp = Path(tempfile.mkdtemp(prefix="dispatcher-profile-import-"))
    database_url, scratch = scratch_database(os.environ.get("DATABASE_URL"), tmp, "profile")
    try:
        from flask_migrate import upgrade
        from sqlalchemy import event

        from dispatcher import connections, create_app
        from dispatcher.extensions import db
        from dispatcher.models import Owner
        from dispatcher.planning import transfer, tree
        from dispatcher.today import local_today

        app = create_app({"instance_path": tmp / "instance", "database_url": database_url})
        with app.app_context():
            upgrade()
            owner = Owner(email="profile@example.com", name="Profile", timezone="UTC")
            owner.set_password("profile-pass")
            db.session.add(owner)
            db.session.commit()
            connections.create(owner.id, "sandbox", "Sandbox", {"api_key": "sbx_profile"})
            db.session.commit()
            goal = tree.create_goal(owner.id, title="Profile goal", budget_cents=10_000_000)
            build(goal, jobs, local_today(owner))
            data = transfer.export_goal(goal)
            owner_id = owner.id
            db.session.remove()
            transfer.import_goal(owner_id, data)  # warm: imports, caches, connections
            db.session.remove()

            kinds: Counter[str] = Counter()

            def count(conn, cursor, statement, parameters, context, executemany) -> None:
                kinds[_kind(statement) + (" (many)" if executemany else "")] += 1

            event.listen(db.engine, "before_cursor_execute", count)
            profile = cProfile.Profile()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if top or callers:
                profile.enable()
            result = transfer.import_goal(owner_id, data)
            profile.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            event.remove(db.engine, "before_cursor_execute", count)
            db.session.remove()
            db.engine.dispose()
        if top or callers:
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).sort_stats(sort)
            stats.print_stats(top)
            if callers:
                stats.print_callers(callers)
            print(out.getvalue())
        print("SQL statements by kind:")
        for kind, n in kinds.most_common():
            print(f"  {n:6d}  {kind}")
        where = "PostgreSQL" if scratch else "SQLite"
        note = " (profiled: slower than unprofiled)" if top or callers else ""
        print(f"{where}: {result.jobs} jobs imported; CPU {cpu:.2f} s, wall {wall:.2f} s, "
              f"{sum(kinds.values())} statements{note}")  # fmt: skip
    finally:
        drop_scratch(database_url, scratch)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", help="pstats key: tottime, cumulative...")
    parser.add_argument("--callers", default="", help="also print the callers of this function")
    args = parser.parse_args()
    run(args.jobs, args.top, args.sort, args.callers)


if __name__ == "__main__":
    main()
