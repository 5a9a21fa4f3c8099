"""Money reservation: one conditional UPDATE per envelope, so no budget is ever overspent.

The goal is always an envelope; any job may carry one too (`budget_cents`). Every ancestor of
a job keeps the reservations and spend of its subtree, so the checks need no tree walk in SQL.
All of it happens in the caller's transaction: a failed check raises and the caller rolls back.
"""

from __future__ import annotations

from sqlalchemy import update

from dispatcher.errors import BudgetExceeded
from dispatcher.extensions import db
from dispatcher.models import Goal, MicroJob
from dispatcher.money import format_cents


def _chain(job: MicroJob) -> list[MicroJob]:
    """The job and its ancestors, nearest first."""
    chain, node = [], job
    while node is not None:
        chain.append(node)
        node = node.parent
    return chain


def reserve(job: MicroJob, cents: int) -> None:
    """Reserve `cents` on the goal and on every envelope above the job, or raise."""
    if cents < 0:
        raise ValueError("cannot reserve a negative amount")
    if cents == 0:
        return
    goal_ok = db.session.execute(
        update(Goal)
        .where(
            Goal.id == job.goal_id,
            Goal.budget_cents - Goal.reserved_cents - Goal.spent_cents >= cents,
        )
        .values(reserved_cents=Goal.reserved_cents + cents)
        .execution_options(synchronize_session=False)
    ).rowcount
    if goal_ok != 1:
        goal = db.session.get(Goal, job.goal_id)
        db.session.refresh(goal)
        raise BudgetExceeded(
            f"goal budget left is {format_cents(goal.available_cents, goal.currency)}; "
            f"this needs {format_cents(cents, goal.currency)}"
        )
    for node in _chain(job):
        condition = [MicroJob.id == node.id]
        if node.budget_cents is not None:
            condition.append(
                MicroJob.budget_cents - MicroJob.reserved_cents - MicroJob.spent_cents >= cents
            )
        ok = db.session.execute(
            update(MicroJob)
            .where(*condition)
            .values(reserved_cents=MicroJob.reserved_cents + cents)
            .execution_options(synchronize_session=False)
        ).rowcount
        if ok != 1:
            raise BudgetExceeded(
                f"the envelope on {node.title!r} has no room for "
                f"{format_cents(cents, job.goal.currency)}"
            )
    _expire(job)


def release(job: MicroJob, cents: int) -> None:
    """Give back a reservation (cancel, reject, expiry, failure)."""
    _move(job, reserved=-cents, spent=0)


def spend(job: MicroJob, reserved_cents: int, paid_cents: int) -> None:
    """Turn a reservation into spend; `paid_cents` may be less than what was reserved."""
    _move(job, reserved=-reserved_cents, spent=paid_cents)


def _move(job: MicroJob, *, reserved: int, spent: int) -> None:
    if not reserved and not spent:
        return
    db.session.execute(
        update(Goal)
        .where(Goal.id == job.goal_id)
        .values(
            reserved_cents=Goal.reserved_cents + reserved,
            spent_cents=Goal.spent_cents + spent,
        )
        .execution_options(synchronize_session=False)
    )
    ids = [node.id for node in _chain(job)]
    db.session.execute(
        update(MicroJob)
        .where(MicroJob.id.in_(ids))
        .values(
            reserved_cents=MicroJob.reserved_cents + reserved,
            spent_cents=MicroJob.spent_cents + spent,
        )
        .execution_options(synchronize_session=False)
    )
    _expire(job)


def _expire(job: MicroJob) -> None:
    """Reload the money columns the UPDATEs changed behind the ORM's back."""
    for node in _chain(job):
        db.session.expire(node, ["reserved_cents", "spent_cents"])
    goal = db.session.get(Goal, job.goal_id)
    if goal is not None:
        db.session.expire(goal, ["reserved_cents", "spent_cents"])
