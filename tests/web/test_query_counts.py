"""The owner's pages issue as many SQL queries for a big goal as for a small one.

No lazy load per job: the goal page, Today, the review queue and the results page are counted
for a tree, then again after the tree has grown tenfold (deeper, with delegated jobs delivered
and waiting for review, jobs due today and overdue), and must issue the same number.
bench/bench_goal_tree.py times the same pages on a 2,000-job goal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fakes.work import deliver
from sqlalchemy import event

from dispatcher import lifecycle
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Goal, MicroJob
from dispatcher.planning import tree
from dispatcher.planning.build import NewJob, create_subtree, walk_new
from dispatcher.today import local_today

#: What the leaves of each added group become, in turn.
KINDS = ("done", "due_today", "overdue", "planned_today", "undecided", "staged", "delivered")


@contextmanager
def counting() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def add_groups(goal: Goal, groups: int, today) -> None:
    """Add `groups` top-level jobs, each with two steps of leaves and a split leaf (depth 3),
    one leaf of each kind per step; delegated ones go out and come back for review."""
    kinds: dict[int, str] = {}

    def leaf(title: str, kind: str) -> NewJob:
        fields: dict = {"estimate_minutes": 15, "acceptance_criteria": ["done well"]}
        if kind in ("staged", "delivered"):
            fields.update(mode="delegate", channel="sandbox", price_cents=100)
        elif kind != "undecided":
            fields["mode"] = "keep"
        if kind == "due_today":
            fields["due_date"] = today
        elif kind == "overdue":
            fields["due_date"] = today - timedelta(days=2)
        elif kind == "planned_today":
            fields["planned_for"] = today
        spec = NewJob(title=title, fields=fields, done=kind == "done")
        kinds[id(spec)] = kind
        return spec

    specs = [
        NewJob(
            title=f"Group {g}",
            children=[
                NewJob(
                    title=f"Step {g}.{s}",
                    children=[leaf(f"Job {g}.{s}.{k}", kind) for k, kind in enumerate(KINDS)]
                    + [NewJob(title=f"Part {g}.{s}", children=[leaf(f"Job {g}.{s}.x", "done")])],
                )
                for s in range(2)
            ],
        )
        for g in range(groups)
    ]
    created = create_subtree(goal, None, specs)
    for spec, job in zip(walk_new(specs), created, strict=True):
        if kinds.get(id(spec)) == "delivered":
            _deliver(job)
    db.session.commit()


def _deliver(job: MicroJob) -> None:
    dispatch = dispatch_service.dispatch_job(job, commit=False)
    deliver(dispatch, f"sub-{job.id}", content="x")


def query_counts(client, goal_id: int) -> dict[str, int]:
    pages = {
        "goal page": f"/goals/{goal_id}",
        "Today": "/today",
        "review queue": "/review",
        "results page": f"/goals/{goal_id}/results",
    }
    counts = {}
    for name, url in pages.items():
        with counting() as statements:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        counts[name] = len(statements)
    return counts


@pytest.fixture
def big_goal(ann) -> Goal:
    return tree.create_goal(ann.id, title="Many jobs", budget_cents=1_000_000)


def test_query_counts_do_not_grow_with_the_tree(client, ann, big_goal):
    today = local_today(ann)
    add_groups(big_goal, 1, today)
    small_jobs = len(big_goal.jobs)
    small = query_counts(client, big_goal.id)

    add_groups(big_goal, 9, today)
    db.session.expire_all()
    assert len(big_goal.jobs) == 10 * small_jobs  # 21 jobs, then 210
    big = query_counts(client, big_goal.id)

    assert big == small
    assert all(count <= 12 for count in big.values()), big


def test_the_counted_pages_show_the_whole_tree(client, ann, big_goal):
    """The counts above are of pages that really list every job, not of empty ones."""
    add_groups(big_goal, 2, local_today(ann))
    jobs = big_goal.jobs
    goal_page = client.get(f"/goals/{big_goal.id}").get_data(as_text=True)
    assert all(f'id="job-{job.id}"' in goal_page for job in jobs)

    today = client.get("/today").get_data(as_text=True)
    review = client.get("/review").get_data(as_text=True)
    for job in jobs:
        if job.channel and job.status == lifecycle.Status.DELIVERED:
            assert job.title in today and job.title in review
        if job.due_date is not None or job.planned_for is not None:
            assert f'id="job-{job.id}"' in today
