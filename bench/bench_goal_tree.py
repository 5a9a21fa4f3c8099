"""A 2,000-job goal: how long its pages take to render and how many SQL queries they issue.

Builds the goal in a temporary SQLite database (migrated like a real one), then renders the
plan page (and the goal page, when the app has one) a few times through the test client and
prints the median time and the query count of one render (counted with a SQLAlchemy event
listener). Also times the bulk operations that touch the whole tree: building it, CSV and JSON
export, and importing the JSON as a new goal.

    .venv/bin/python bench/bench_goal_tree.py [--jobs 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args, **kwargs) -> None:
        self.count += 1


@contextmanager
def counting(engine):
    from sqlalchemy import event

    counter = QueryCounter()
    event.listen(engine, "before_cursor_execute", counter)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", counter)


def shape_for(total: int) -> tuple[int, int, int]:
    """Top-level groups x sub-groups x leaves whose sum is about `total` (2000 -> 20, 9, 10)."""
    top, mid = 20, 9
    leaves = max(1, round((total - top - top * mid) / (top * mid)))
    return top, mid, leaves


def build(goal, total: int) -> int:
    from dispatcher.extensions import db
    from dispatcher.planning.build import NewJob, create_subtree

    top, mid, leaves = shape_for(total)
    specs = [
        NewJob(
            title=f"Guest post {t + 1}",
            children=[
                NewJob(
                    title=f"Step {m + 1}",
                    children=[
                        NewJob(
                            title=f"Micro-job {t + 1}.{m + 1}.{x + 1}",
                            fields={
                                "estimate_minutes": 10,
                                "mode": "keep",
                                "acceptance_criteria": ["done well"],
                            },
                            done=(x % 3 == 0),
                        )
                        for x in range(leaves)
                    ],
                )
                for m in range(mid)
            ],
        )
        for t in range(top)
    ]
    created = create_subtree(goal, None, specs)
    db.session.commit()
    return len(created)


def timed(func, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from flask_migrate import upgrade

    from dispatcher import create_app
    from dispatcher.extensions import db, login_manager
    from dispatcher.models import Owner
    from dispatcher.planning import transfer, tree

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "instance_path": Path(tmp),
                "database_url": f"sqlite:///{tmp}/bench.db",
                "testing": True,
                "extra": {"disable_csrf": True},
            }
        )
        if login_manager._user_callback is None:  # until the login module provides one
            login_manager.user_loader(lambda user_id: db.session.get(Owner, int(user_id)))
        with app.app_context():
            upgrade()
            owner = Owner(email="bench@example.com", name="Bench")
            owner.set_password("bench-pass")
            db.session.add(owner)
            db.session.commit()
            goal = tree.create_goal(owner.id, title="Bench goal", budget_cents=100_000)
            start = time.perf_counter()
            made = build(goal, args.jobs)
            build_s = time.perf_counter() - start
            goal_id, owner_id = goal.id, owner.id
            db.session.remove()

        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = str(owner_id)
            session["_fresh"] = True

        pages = {"plan page": f"/goals/{goal_id}/plan"}
        rules = {r.rule for r in app.url_map.iter_rules()}
        for rule in ("/goals/<int:goal_id>", "/goals/<goal_id>", "/goals/<int:id>"):
            if rule in rules:
                pages["goal page"] = f"/goals/{goal_id}"
        pages["cadence page"] = f"/goals/{goal_id}/cadence"
        pages["CSV export"] = f"/goals/{goal_id}/export.csv"
        pages["JSON export"] = f"/goals/{goal_id}/export.json"

        print(f"goal with {made} jobs built in {build_s:.2f} s "
              f"({made / build_s:.0f} jobs/s, one transaction)")  # fmt: skip
        with app.app_context():
            engine = db.engine
        for name, url in pages.items():
            client.get(url)  # warm up templates and caches
            with counting(engine) as counter:
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            median, _ = timed(lambda url=url: client.get(url), args.runs)
            size = len(response.data) / 1024
            print(
                f"{name:<13} {median * 1000:8.1f} ms median of {args.runs}, "
                f"{counter.count:3d} SQL queries, {size:7.0f} KiB"
            )

        with app.app_context():
            data = json.loads(client.get(f"/goals/{goal_id}/export.json").data)
            start = time.perf_counter()
            with counting(db.engine) as counter:
                result = transfer.import_goal(owner_id, data)
            import_s = time.perf_counter() - start
            print(f"JSON import   {import_s * 1000:8.1f} ms for {result.jobs} jobs, "
                  f"{counter.count} SQL statements")  # fmt: skip
            db.session.remove()


if __name__ == "__main__":
    main()
