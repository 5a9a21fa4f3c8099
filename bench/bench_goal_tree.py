"""A 2,000-job goal: how long each owner page takes to render and how many SQL queries it issues.

Builds a realistic goal in a temporary SQLite database (migrated like a real one): a tree 3-4
levels deep whose leaves are a mix of kept jobs (done, due or planned today, overdue, later),
undecided drafts, and delegated jobs in every stage (staged, dispatched, taken, delivered and
awaiting review, revision asked, accepted and paid, failed), with their Dispatch, Delivery,
Review and Event rows. Then it GETs each owner page through the test client as the logged-in
owner (CSRF on, as in production) and prints, per page, the median and p95 time over `--runs`
renders, the SQL queries one render issues (counted with a `before_cursor_execute`
listener) and the page's size. The goal page is also compared with the same page of a
20-job goal built alike (the floor), and the figures are written to
bench/results/goal_tree.json as [{"name", "value", "unit", "floor", "ratio", "target"}].
Also times the bulk operations that touch the whole tree: building it, CSV and JSON
export, and importing the JSON as a new goal.

    .venv/bin/python bench/bench_goal_tree.py [--jobs 2000] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRICE_CENTS = 500
#: The small goal whose goal page is the floor the big one is compared with.
SMALL_GOAL = 20

#: What each leaf becomes, by its index modulo len(LEAF_KINDS): about 30% done by hand, a
#: fifth due, planned or overdue today, 45% delegated in every stage a delegated job passes.
LEAF_KINDS = (
    "done", "done", "done", "done", "done", "done",
    "due_today", "planned_today", "overdue", "later",
    "undecided", "undecided",
    "staged", "dispatched", "taken", "delivered", "paid", "paid", "failed", "revision",
)  # fmt: skip


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


def shape_for(total: int) -> tuple[int, int, int, int]:
    """(top-level groups, steps per group, leaves per step, split jobs per step): each step has
    `leaves` leaves at depth 3 and `split` depth-3 jobs of 3 leaves each at depth 4.
    2000 -> (20, 9, 2, 2): 20 + 180 + 180 x (2 + 2 x 4) = 2,000 jobs, 1,440 of them leaves."""
    top, mid = max(1, round(total / 100)), 9
    per_step = max(1, round((total - top - top * mid) / (top * mid)))
    split = per_step // 5
    return top, mid, per_step - 4 * split, split


def leaf_spec(number: str, index: int, today):
    """A leaf's NewJob and what it is to become (one of LEAF_KINDS)."""
    from dispatcher.planning.build import NewJob

    kind = LEAF_KINDS[index % len(LEAF_KINDS)]
    fields: dict = {"estimate_minutes": 10 + index % 5 * 5}
    if index % 7:
        fields["acceptance_criteria"] = ["done well", "linked from the hub page"]
    if kind in ("done", "due_today", "planned_today", "overdue", "later"):
        fields["mode"] = "keep"
    elif kind != "undecided":
        fields.update(mode="delegate", channel="sandbox", price_cents=PRICE_CENTS)
    if kind == "due_today":
        fields["due_date"] = today
    elif kind == "planned_today":
        fields["planned_for"] = today
    elif kind == "overdue":
        fields["due_date"] = today - timedelta(days=1 + index % 5)
    elif kind == "later":
        fields["planned_for"] = today + timedelta(days=1 + index % 9)
    elif kind != "undecided":
        fields["due_date"] = today + timedelta(days=index % 14)
    return NewJob(title=f"Micro-job {number}", fields=fields, done=kind == "done"), kind


def build(goal, total: int, today) -> dict[str, list]:
    """Create the tree (through `create_subtree`, as an import or a playbook would), then take
    each delegated leaf through the dispatch service and the lifecycle to its stage. Returns
    the created jobs by kind (parents under "parent")."""
    from dispatcher.extensions import db
    from dispatcher.planning.build import NewJob, create_subtree, walk_new

    top, mid, shallow, split = shape_for(total)
    kinds: dict[int, str] = {}  # id(spec) -> kind
    counter = 0

    def leaf(number: str):
        nonlocal counter
        spec, kinds[id(spec)] = leaf_spec(number, counter, today)
        counter += 1
        return spec

    specs = [
        NewJob(
            title=f"Guest post {t + 1}",
            children=[
                NewJob(
                    title=f"Step {t + 1}.{m + 1}",
                    children=[leaf(f"{t + 1}.{m + 1}.{x + 1}") for x in range(shallow)]
                    + [
                        NewJob(
                            title=f"Part {t + 1}.{m + 1}.{shallow + s + 1}",
                            children=[
                                leaf(f"{t + 1}.{m + 1}.{shallow + s + 1}.{y + 1}") for y in range(3)
                            ],
                        )
                        for s in range(split)
                    ],
                )
                for m in range(mid)
            ],
        )
        for t in range(top)
    ]
    created = create_subtree(goal, None, specs)
    by_kind: dict[str, list] = {}
    for spec, job in zip(walk_new(specs), created, strict=True):
        by_kind.setdefault(kinds.get(id(spec), "parent"), []).append(job)
    db.session.flush()
    for kind, jobs in by_kind.items():
        for job in jobs:
            advance(job, kind)
    db.session.commit()
    return by_kind


def advance(job, kind: str) -> None:
    """Move one leaf to its stage the way the services, workers and webhooks would."""
    from dispatcher import lifecycle
    from dispatcher.dispatch import budget
    from dispatcher.dispatch import service as dispatch_service
    from dispatcher.extensions import db
    from dispatcher.models import Delivery, DispatchState, Review

    if kind == "planned_today" and job.id % 2:
        lifecycle.transition(job, "start", actor="owner")
    if kind in ("parent", "done", "due_today", "planned_today", "overdue", "later"):
        return
    if kind in ("undecided", "staged"):
        return
    dispatch = dispatch_service.dispatch_job(job, commit=False)
    if kind == "failed":
        dispatch.state = DispatchState.FAILED
        dispatch.attempts = 3
        dispatch.last_error = "422 Unprocessable Entity: the brief is too short for this channel"
        budget.release(job, dispatch.amount_cents)
        lifecycle.transition(job, "fail", actor="system", data={"error": dispatch.last_error})
        return
    dispatch.state = DispatchState.PLACED
    dispatch.attempts = 1
    dispatch.external_id = f"ord-{dispatch.id}"
    dispatch.external_url = f"https://sandbox.example/orders/{dispatch.id}"
    dispatch.placed_at = datetime.now(UTC)
    lifecycle.transition(job, "dispatched", actor="system")
    if kind == "dispatched":
        return
    lifecycle.transition(job, "taken", actor="adapter:sandbox")
    if kind == "taken":
        return
    delivery = Delivery(
        job_id=job.id,
        dispatch_id=dispatch.id,
        external_id=f"sub-{job.id}",
        worker_ref=f"w{job.id % 37}",
        content="Here is the draft: 900 words, three sources, two internal links.",
        url=f"https://docs.example/draft/{job.id}",
    )
    db.session.add(delivery)
    lifecycle.transition(job, "delivered", actor="adapter:sandbox")
    if kind == "delivered":
        return
    db.session.flush()
    if kind == "revision":
        db.session.add(Review(delivery_id=delivery.id, decision="revise", feedback="Cite sources"))
        delivery.status = "revision_requested"
        lifecycle.transition(job, "request_revision", actor="owner")
        return
    db.session.add(Review(delivery_id=delivery.id, decision="accept", rating=4,
                          payout_cents=job.price_cents))  # fmt: skip
    delivery.status = "accepted"
    budget.spend(job, dispatch.amount_cents, job.price_cents)
    lifecycle.transition(job, "accept", actor="owner")
    lifecycle.transition(job, "pay", actor="system")
    job.finished_at = datetime.now(UTC)
    dispatch.state = DispatchState.CLOSED


def goal_page_figures(app, client, big_url: str, small_url: str, runs: int) -> list[dict]:
    """The goal page of the big goal against the same page of a small one (the floor), in
    the same run: time, SQL queries and size, each with its ratio to the floor and its
    target (issue 11: under 150 ms, constant queries, under 200 KB)."""
    from dispatcher.extensions import db

    with app.app_context():
        engine = db.engine
    measured = {}
    for name, url in (("big", big_url), ("small", small_url)):
        client.get(url)
        with counting(engine) as counter:
            response = client.get(url)
        median, _ = timed(lambda url=url: client.get(url), runs)
        measured[name] = (median * 1000, counter.count, len(response.data) / 1024)
    (big_ms, big_q, big_kb), (small_ms, small_q, small_kb) = measured["big"], measured["small"]

    def figure(name: str, value: float, unit: str, floor: float, target: float) -> dict:
        return {
            "name": name, "value": round(value, 1), "unit": unit, "floor": round(floor, 1),
            "ratio": round(value / floor, 2) if floor else None, "target": target,
        }  # fmt: skip

    return [
        figure("goal page time, 2,000 jobs (median)", big_ms, "ms", small_ms, 150),
        figure("goal page SQL queries, 2,000 jobs", big_q, "queries", small_q, small_q),
        figure("goal page size, 2,000 jobs", big_kb, "KiB", small_kb, 200),
    ]


def timed(func: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and p95 (inclusive; the slowest run when runs < 20) in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    if len(times) < 2:
        return times[0], times[0]
    return statistics.median(times), statistics.quantiles(times, n=20, method="inclusive")[18]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="CI: 300 jobs, 1 run")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.runs = 300, 1

    from flask_migrate import upgrade

    from dispatcher import connections, create_app
    from dispatcher.extensions import db, login_manager
    from dispatcher.models import Owner
    from dispatcher.planning import transfer, tree
    from dispatcher.today import local_today

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "instance_path": Path(tmp),
                "database_url": f"sqlite:///{tmp}/bench.db",
                "testing": True,
            }
        )
        if login_manager._user_callback is None:  # until the login module provides one
            login_manager.user_loader(lambda user_id: db.session.get(Owner, int(user_id)))
        with app.app_context():
            upgrade()
            owner = Owner(email="bench@example.com", name="Bench", timezone="UTC")
            owner.set_password("bench-pass")
            db.session.add(owner)
            db.session.commit()
            # delegated jobs use the owner's sandbox connection (no call is ever made here)
            connections.create(owner.id, "sandbox", "Sandbox", {"api_key": "sbx_bench-only"})
            db.session.commit()
            goal = tree.create_goal(
                owner.id, title="Bench goal", metric_name="posts published", baseline=0,
                target=200, budget_cents=10_000_000,
            )  # fmt: skip
            start = time.perf_counter()
            by_kind = build(goal, args.jobs, local_today(owner))
            build_s = time.perf_counter() - start
            made = sum(len(jobs) for jobs in by_kind.values())
            small = tree.create_goal(owner.id, title="Small goal", budget_cents=10_000)
            build(small, SMALL_GOAL, local_today(owner))
            goal_id, owner_id, small_goal_id = goal.id, owner.id, small.id
            job_id = by_kind["delivered"][0].id
            mix = ", ".join(f"{len(by_kind[k])} {k}" for k in dict.fromkeys(LEAF_KINDS))
            db.session.remove()

        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = str(owner_id)
            session["_fresh"] = True

        pages = {
            "goal page": f"/goals/{goal_id}",
            "plan page": f"/goals/{goal_id}/plan",
            "Today": "/today",
            "results page": f"/goals/{goal_id}/results",
            "review queue": "/review",
            "job page": f"/jobs/{job_id}",
            "cadence page": f"/goals/{goal_id}/cadence",
            "CSV export": f"/goals/{goal_id}/export.csv",
            "JSON export": f"/goals/{goal_id}/export.json",
        }

        print(f"goal with {made} jobs built in {build_s:.2f} s "
              f"({made / build_s:.0f} jobs/s, one transaction)")  # fmt: skip
        print(f"  {len(by_kind['parent'])} parents; leaves: {mix}")
        with app.app_context():
            engine = db.engine
        for name, url in pages.items():
            client.get(url)  # warm up templates and caches
            with counting(engine) as counter:
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            median, p95 = timed(lambda url=url: client.get(url), args.runs)
            size = len(response.data) / 1024
            print(
                f"{name:<13} {median * 1000:8.1f} ms median {p95 * 1000:8.1f} ms p95 "
                f"of {args.runs}, {counter.count:4d} SQL queries, {size:6.0f} KiB"
            )

        figures = goal_page_figures(
            app, client, pages["goal page"], f"/goals/{small_goal_id}", args.runs
        )
        for figure in figures:
            print(
                f"  {figure['name']}: {figure['value']:g} {figure['unit']} "
                f"(floor {figure['floor']:g}, ratio {figure['ratio']:.2f}, "
                f"target {figure['target']:g})"
            )
        out = ROOT / "bench" / "results" / "goal_tree.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"  written to {out.relative_to(ROOT)}")

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
