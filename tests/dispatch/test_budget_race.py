"""Many dispatches from several processes at one goal never spend past its budget."""

from __future__ import annotations

from pathlib import Path

from dispatch.helpers import delegated, race
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, MicroJob
from dispatcher.planning import tree

CHILD = Path(__file__).with_name("budget_child.py")
PROCESSES = 4
JOBS_EACH = 12


def test_concurrent_reservations_from_several_processes_never_overspend(
    app, owner, app_config, tmp_path
):
    goal = tree.create_goal(owner.id, title="tight", budget_cents=10_000)
    price, assignments = 350, 2  # 700 a job: 14 fit (9,800), 34 must be refused
    jobs = [
        delegated(goal, title=f"j{i}", price=price, assignments=assignments)
        for i in range(PROCESSES * JOBS_EACH)
    ]
    # interleaved job ids, so every process races for every part of the budget
    specs = [{"job_ids": [j.id for j in jobs[n::PROCESSES]]} for n in range(PROCESSES)]
    results = race(CHILD, app, app_config, tmp_path, specs, start_in=3)

    ok = [job_id for r in results for job_id in r["ok"]]
    refused = [job_id for r in results for job_id in r["refused"]]
    assert len(ok) + len(refused) == len(jobs)
    assert sum(1 for r in results if r["ok"]) >= 2  # the race was real: several processes won
    db.session.expire_all()
    db.session.refresh(goal)
    assert len(ok) == 14
    assert goal.reserved_cents == 14 * 700 <= goal.budget_cents
    assert db.session.query(Dispatch).count() == 14
    assert sum(d.amount_cents for d in db.session.query(Dispatch)) == goal.reserved_cents
    statuses = {j.id: j.status for j in db.session.query(MicroJob)}
    assert all(statuses[i] == Status.QUEUED for i in ok)
    assert all(statuses[i] == Status.DRAFT for i in refused)
