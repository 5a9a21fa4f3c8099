"""The fault suite's figures, from the sandbox's own records and from the database.

Must be zero: lost jobs, duplicate orders, events applied twice, budget overspend, money out
of step with the platform, double payments, killed jobs never recovered. Orders placed at
the platform must equal the jobs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Dispatch, Event, Goal, InboundEvent, MicroJob

#: transitions a job makes at most once on the happy path (no withdrawals, no revisions)
ONCE = ("queue", "dispatched", "taken", "delivered", "accept", "pay", "fail", "expire")


@dataclass
class Figures:
    jobs: int
    dispatched: int
    orders: int
    lost: int
    duplicate_orders: int
    applied_twice: int
    overspend_cents: int
    money_out_of_step_cents: int
    double_payments: int
    killed_jobs: int
    unrecovered: int
    longest_recovery: float | None
    drain_seconds: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def failures(self) -> list[str]:
        must_be_zero = {
            "lost jobs": self.lost,
            "duplicate orders": self.duplicate_orders,
            "events applied twice": self.applied_twice,
            "budget overspend": self.overspend_cents,
            "money out of step with the platform": self.money_out_of_step_cents,
            "double payments": self.double_payments,
            "killed jobs never recovered": self.unrecovered,
        }
        problems = [f"{name} = {value}" for name, value in must_be_zero.items() if value]
        if self.orders != self.jobs:
            problems.append(f"orders at the platform ({self.orders}) != jobs ({self.jobs})")
        return problems

    def lines(self) -> list[str]:
        recovery = (
            f"{self.longest_recovery:.1f} s ({self.killed_jobs} killed mid-job)"
            if self.longest_recovery is not None
            else f"- ({self.killed_jobs} killed mid-job)"
        )
        drain = f"{self.drain_seconds:.1f} s" if self.drain_seconds is not None else "not drained"
        rows = [
            ("jobs dispatched", self.dispatched),
            ("orders placed at the platform", self.orders),
            ("lost jobs", self.lost),
            ("duplicate orders", self.duplicate_orders),
            ("events applied twice", self.applied_twice),
            ("budget overspend (cents)", self.overspend_cents),
            ("longest wait of a killed job", recovery),
            ("time to drain", drain),
        ]
        width = max(len(name) for name, _ in rows)
        return [f"  {name:<{width}}  {value}" for name, value in rows]


def compute(
    goal_id: int, stats: dict[str, Any], recoveries: list[float | None], drain: float | None
) -> Figures:
    """Read the database (inside an app context) and combine it with the sandbox's stats."""
    db.session.rollback()
    goal = db.session.get(Goal, goal_id)
    db.session.refresh(goal)
    jobs = db.session.execute(
        select(MicroJob.id, MicroJob.status, MicroJob.assignments).where(
            MicroJob.goal_id == goal_id
        )
    ).all()
    job_ids = {j.id for j in jobs}
    keys_by_job: dict[int, list[str]] = defaultdict(list)
    for job_id, key in db.session.execute(
        select(Dispatch.job_id, Dispatch.idempotency_key).where(Dispatch.job_id.in_(job_ids))
    ):
        keys_by_job[job_id].append(key)

    by_key: dict[str, int] = stats["orders_by_key"]
    known_keys = {k for keys in keys_by_job.values() for k in keys}
    per_job_orders = {j: sum(by_key.get(k, 0) for k in keys) for j, keys in keys_by_job.items()}
    duplicate_orders = sum(max(0, n - 1) for n in per_job_orders.values())
    duplicate_orders += sum(n for k, n in by_key.items() if k not in known_keys)  # orphans
    duplicate_orders = max(duplicate_orders, stats.get("duplicate_orders", 0))

    transitions = Counter(
        (job_id, kind)
        for job_id, kind in db.session.execute(
            select(Event.job_id, Event.kind).where(Event.goal_id == goal_id, Event.kind.in_(ONCE))
        )
    )
    applied_twice = sum(n - 1 for n in transitions.values() if n > 1)
    deliveries = Counter(
        job_id
        for (job_id,) in db.session.execute(
            select(Delivery.job_id).where(Delivery.job_id.in_(job_ids))
        )
    )
    assignments = {j.id: j.assignments for j in jobs}
    applied_twice += sum(max(0, n - assignments[j]) for j, n in deliveries.items())

    statuses = Counter(j.status for j in jobs)
    overspend = max(0, goal.spent_cents + goal.reserved_cents - goal.budget_cents)
    overspend = max(overspend, stats.get("paid_cents", 0) - goal.budget_cents, 0)
    inbound = Counter(s for (s,) in db.session.execute(select(InboundEvent.status)))
    measured = [r for r in recoveries if r is not None]
    return Figures(
        jobs=len(jobs),
        dispatched=len(keys_by_job),
        orders=stats["orders"],
        lost=len(jobs) - statuses.get(Status.PAID, 0),
        duplicate_orders=duplicate_orders,
        applied_twice=applied_twice,
        overspend_cents=overspend,
        money_out_of_step_cents=abs(goal.spent_cents - stats.get("paid_cents", 0)),
        double_payments=stats.get("double_payments", 0),
        killed_jobs=len(recoveries),
        unrecovered=len(recoveries) - len(measured),
        longest_recovery=max(measured) if measured else None,
        drain_seconds=drain,
        extra={
            "statuses": dict(statuses),
            "budget": (goal.budget_cents, goal.reserved_cents, goal.spent_cents),
            "paid_at_platform": (stats.get("payments", 0), stats.get("paid_cents", 0)),
            "inbound": dict(inbound),
            "dispatch_attempts": db.session.scalar(
                select(db.func.sum(Dispatch.attempts)).where(Dispatch.job_id.in_(job_ids))
            ),
            "adopted": sum(
                1
                for (data,) in db.session.execute(
                    select(Event.data).where(Event.goal_id == goal_id, Event.kind == "dispatched")
                )
                if (data or {}).get("adopted")
            ),
        },
    )
