"""The fault suite's figures, from the platform's own records (the sandbox's) and from the
database.

Must be zero: lost jobs, duplicate or orphan orders, decisions applied twice (paid in our
books beyond what the platform paid), work charged to another order, money left reserved on
finished assignments, payments the platform made that the books lack, decisions the platform
had to absorb as repeats, overspend of the contested budget at any moment, money out of step
with the platform, double payments, killed jobs never recovered.

Must have happened, or the run proves nothing: workers killed mid-job, faults injected at
the platform, duplicated and reordered webhooks, dispatches refused for budget, rejections,
re-orders, partial expiries, concurrent double accepts and accept-versus-cancel races, jobs
with several assignments.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from dispatcher.extensions import db
from dispatcher.lifecycle.assignment import FINISHED
from dispatcher.models import Assignment, Delivery, Dispatch, Goal, InboundEvent, MicroJob

MUST_BE_ZERO = (
    "lost jobs",
    "duplicate orders",
    "orders nobody asked for",
    "applied twice",
    "work charged to another order",
    "money reserved on finished assignments",
    "payments the books lack",
    "second pushes absorbed by the platform",
    "budget overspend (cents)",
    "money out of step with the platform (cents)",
    "double payments",
    "killed jobs never recovered",
)

MUST_HAVE_HAPPENED = (
    "workers killed mid-job",
    "faults injected at the platform",
    "webhooks duplicated",
    "webhooks reordered",
    "dispatch attempts refused for budget",
    "rejections",
    "re-orders",
    "partial expiries",
    "double accepts raced",
    "accepts raced with cancels",
    "jobs with several assignments",
    "changes found by polling",
)


@dataclass
class Figures:
    jobs: int
    places: int
    dispatched: int
    orders: int
    zero: dict[str, int]
    happened: dict[str, int]
    longest_recovery: float | None
    drain_seconds: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def failures(self) -> list[str]:
        problems = [f"{name} = {value}" for name, value in self.zero.items() if value]
        problems += [f"{name} never happened" for name, n in self.happened.items() if not n]
        return problems

    def lines(self) -> list[str]:
        recovery = f"{self.longest_recovery:.1f} s" if self.longest_recovery is not None else "-"
        drain = f"{self.drain_seconds:.1f} s" if self.drain_seconds is not None else "not drained"
        rows = [
            ("jobs (assignments)", f"{self.jobs} ({self.places})"),
            ("dispatches", self.dispatched),
            ("orders placed at the platform", self.orders),
            *self.zero.items(),
            ("longest wait of a killed job", recovery),
            ("time to settle", drain),
            ("-- chaos that happened", ""),
            *self.happened.items(),
        ]
        width = max(len(name) for name, _ in rows)
        return [f"  {name:<{width}}  {value}" for name, value in rows]


def compute(
    goal_id: int,
    stats: dict[str, Any],
    recoveries: list[float | None],
    drain: float | None,
    observed: dict[str, int],
) -> Figures:
    """Read the database (inside an app context), set it against the platform's records
    (`stats`, the sandbox's /_stats) and what the suite saw happen (`observed`)."""
    db.session.rollback()
    goal = db.session.get(Goal, goal_id)
    db.session.refresh(goal)
    jobs = db.session.scalars(select(MicroJob).where(MicroJob.goal_id == goal_id)).all()
    job_ids = {j.id for j in jobs}
    dispatches = db.session.scalars(select(Dispatch).where(Dispatch.job_id.in_(job_ids))).all()
    places = db.session.scalars(select(Assignment).where(Assignment.job_id.in_(job_ids))).all()
    deliveries = db.session.scalars(select(Delivery).where(Delivery.job_id.in_(job_ids))).all()

    # orders, from the platform's own records: one per dispatch key at most, none unknown
    by_key: dict[str, int] = stats["orders_by_key"]
    keys = {d.idempotency_key for d in dispatches}
    duplicate_orders = sum(n - 1 for k, n in by_key.items() if k in keys and n > 1)
    orphans = sum(n for k, n in by_key.items() if k not in keys)

    # payments, from the platform's own records, against each place's books
    platform_paid: dict[str, int] = stats.get("paid_by_submission", {})
    accepted_by_place: dict[int, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        if d.status == "accepted" and d.assignment_id is not None:
            accepted_by_place[d.assignment_id].append(d)
    books_paid: dict[str, int] = {}
    applied_twice = 0
    for place in places:
        if place.status != "paid":
            continue
        accepted = accepted_by_place.get(place.id, [])
        if len(accepted) != 1:
            applied_twice += 1  # a paid place must have exactly one accepted submission
            continue
        books_paid[accepted[0].external_id] = place.paid_cents
    books_lack = 0
    for sub, amount in platform_paid.items():
        if books_paid.get(sub) != amount:
            books_lack += 1
    for sub, amount in books_paid.items():
        if platform_paid.get(sub, 0) < amount:
            applied_twice += 1  # paid in our books beyond what the platform paid
    place_order = {p.id: p.dispatch_id for p in places}
    charged_elsewhere = sum(
        1
        for d in deliveries
        if d.assignment_id is not None and place_order.get(d.assignment_id) != d.dispatch_id
    )
    held = sum(p.held_cents for p in places)
    reserved_on_finished = sum(p.held_cents for p in places if p.status in FINISHED)
    reserved_on_finished += abs(goal.reserved_cents - held)

    statuses = Counter(j.status for j in jobs)
    counters = stats.get("counters", {})
    inbound = Counter(s for (s,) in db.session.execute(select(InboundEvent.status)))
    # why events were quarantined: the database is gone after the run, so say it here
    quarantined = Counter(
        (e or "")[:300]
        for (e,) in db.session.execute(
            select(InboundEvent.error).where(InboundEvent.status == "quarantined")
        )
    )
    measured = [r for r in recoveries if r is not None]
    fees = sum(p.fee_cents for p in places if p.status == "paid")
    zero = {
        "lost jobs": observed.get("lost", 0),
        "duplicate orders": duplicate_orders,
        "orders nobody asked for": orphans,
        "applied twice": applied_twice,
        "work charged to another order": charged_elsewhere,
        "money reserved on finished assignments": reserved_on_finished,
        "payments the books lack": books_lack,
        "second pushes absorbed by the platform": counters.get("review_replays", 0),
        "budget overspend (cents)": max(
            observed.get("overspend", 0),
            goal.spent_cents + goal.reserved_cents - goal.budget_cents,
            stats.get("paid_cents", 0) - goal.budget_cents,
            0,
        ),
        "money out of step with the platform (cents)": abs(
            goal.spent_cents - fees - stats.get("paid_cents", 0)
        ),
        "double payments": stats.get("double_payments", 0),
        "killed jobs never recovered": len(recoveries) - len(measured),
    }
    happened = {
        "workers killed mid-job": len(recoveries),
        "faults injected at the platform": sum(
            v for k, v in counters.items() if k.startswith("fault_")
        ),
        "webhooks duplicated": counters.get("webhooks_duplicated", 0),
        "webhooks reordered": counters.get("webhooks_reordered", 0),
        "dispatch attempts refused for budget": observed.get("refused", 0),
        "first attempts leased by the request": observed.get("leased", 0),
        "dispatches staged for the batch claim": observed.get("staged", 0),
        "rejections": observed.get("rejected", 0),
        "re-orders": len(_reordered(dispatches)),
        "partial expiries": observed.get("partial_expiries", 0),
        "double accepts raced": observed.get("double_accepts", 0),
        "accepts raced with cancels": observed.get("cancel_races", 0),
        "jobs with several assignments": sum(1 for j in jobs if j.assignments > 1),
        "changes found by polling": db.session.scalar(
            select(func.count()).where(InboundEvent.source == "poll")
        ),
    }
    if observed.get("mode") == "webhooks":
        happened.pop("changes found by polling")
    if observed.get("mode") == "polled":
        for name in ("webhooks duplicated", "webhooks reordered"):
            happened.pop(name)
    return Figures(
        jobs=len(jobs),
        places=sum(j.assignments for j in jobs),
        dispatched=len(dispatches),
        orders=stats["orders"],
        zero=zero,
        happened=happened,
        longest_recovery=max(measured) if measured else None,
        drain_seconds=drain,
        extra={
            "statuses": dict(statuses),
            "places": dict(Counter(p.status for p in places)),
            "budget": (goal.budget_cents, goal.reserved_cents, goal.spent_cents),
            "paid_at_platform": (stats.get("payments", 0), stats.get("paid_cents", 0)),
            "late deliveries": sum(1 for d in deliveries if d.status == "late"),
            "inbound": dict(inbound),
            "quarantined": dict(quarantined.most_common(5)),
            "dispatch_attempts": sum(d.attempts for d in dispatches),
        },
    )


def _reordered(dispatches) -> set[int]:
    """Jobs that had more than one order."""
    per_job = Counter(d.job_id for d in dispatches)
    return {job_id for job_id, n in per_job.items() if n > 1}
