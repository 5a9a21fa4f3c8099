"""Money reservation: one conditional UPDATE per envelope, so no budget is ever overspent.

The goal is always an envelope; any job may carry one too (`budget_cents`). Every ancestor of
a job keeps the reservations and spend of its subtree, so the checks need no tree walk in SQL.
All of it happens in the caller's transaction: a failed check raises and the caller rolls back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlalchemy import Update, bindparam, update

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


def has_envelopes(job: MicroJob) -> bool:
    """Whether the job or one above it has an envelope of its own (beside the goal's)."""
    return any(node.budget_cents is not None for node in _chain(job))


def reserve(
    job: MicroJob,
    cents: int,
    *,
    locked: bool = False,
    goal_update: Callable[[], bool] | None = None,
) -> None:
    """Reserve `cents` on the goal and on every envelope above the job, or raise.

    The goal and the envelopes above the job are conditional UPDATEs (no other writer can
    slip between check and write). `locked`: the job's row is locked in this transaction
    (`lock_job`) and was loaded by that lock, so its own envelope is checked here and its
    own reservation is left to the caller, who must add `cents` to it in the UPDATE that
    writes its status (`request_writes.move_job`; issue 12: one UPDATE of the job, not two,
    and no attribute left for a flush). Every other caller keeps the SQL form.
    `goal_update`: runs the goal's same guarded UPDATE folded into the caller's statement
    (request_folds.py, on PostgreSQL); whether it reserved."""
    if cents < 0:
        raise ValueError("cannot reserve a negative amount")
    if cents == 0:
        return
    if goal_update is not None:
        goal_ok = 1 if goal_update() else 0
    elif locked:  # a request (dispatch_job): the same UPDATE, built once and run on Core
        goal_ok = (
            db.session.connection()
            .execute(_reserve_goal(), {"goal_id": job.goal_id, "cents": cents})
            .rowcount
        )
    else:
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
    chain = _chain(job)
    held: list[int] = []  # the envelopes reserved so far, given back if one further up refuses
    if locked:
        chain = chain[1:]
        if job.budget_cents is not None and (
            job.budget_cents - job.reserved_cents - job.spent_cents < cents
        ):
            _give_back(job, held, cents)
            raise _no_room(job, job, cents)
    for node in chain:
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
            _give_back(job, held, cents)
            raise _no_room(job, node, cents)
        held.append(node.id)
    _expire(job, keep_job=locked)


def _give_back(job: MicroJob, envelopes: list[int], cents: int) -> None:
    """Undo a refused reservation's writes so far (the goal's, and the envelopes' in
    `envelopes`), in the same transaction, whose row locks they still hold: a caller that
    commits after the refusal (an API request commits its token's use) must not commit
    money held for an order that was never made."""
    db.session.execute(
        update(Goal)
        .where(Goal.id == job.goal_id)
        .values(reserved_cents=Goal.reserved_cents - cents)
        .execution_options(synchronize_session=False)
    )
    if envelopes:
        db.session.execute(
            update(MicroJob)
            .where(MicroJob.id.in_(envelopes))
            .values(reserved_cents=MicroJob.reserved_cents - cents)
            .execution_options(synchronize_session=False)
        )


@functools.cache
def _reserve_goal() -> Update:
    """The goal's guarded reservation as a Core statement, built once (issue 12: building
    it and running it through the ORM's bulk UPDATE cost ~1 ms of Python per request)."""
    goals = Goal.__table__
    cents = bindparam("cents")
    return (
        update(goals)
        .where(
            goals.c.id == bindparam("goal_id"),
            goals.c.budget_cents - goals.c.reserved_cents - goals.c.spent_cents >= cents,
        )
        .values(reserved_cents=goals.c.reserved_cents + cents)
    )


def _no_room(job: MicroJob, node: MicroJob, cents: int) -> BudgetExceeded:
    return BudgetExceeded(
        f"the envelope on {node.title!r} has no room for {format_cents(cents, job.goal.currency)}"
    )


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


def _expire(job: MicroJob, *, keep_job: bool = False) -> None:
    """Reload the money columns the UPDATEs changed behind the ORM's back (`keep_job`: the
    job's own were set on its attributes, and stay)."""
    for node in _chain(job)[1 if keep_job else 0 :]:
        db.session.expire(node, ["reserved_cents", "spent_cents"])
    goal = db.session.get(Goal, job.goal_id)
    if goal is not None:
        db.session.expire(goal, ["reserved_cents", "spent_cents"])
