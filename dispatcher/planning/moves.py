"""Reorder jobs, move them between parents, rename them in place.

Positions stay dense (0..n-1) among the siblings a move touches, so "position 3" always means
"the fourth child". Money follows the job: envelopes keep their subtree's reservations and
spend (dispatch/budget.py), so a moved job's amounts leave its old ancestors and join the new
ones, in the same transaction, and a full envelope refuses the move.
"""

from __future__ import annotations

from sqlalchemy import select, update

from dispatcher.errors import BudgetExceeded, InvalidTransition
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import MicroJob
from dispatcher.money import format_cents
from dispatcher.planning import tree
from dispatcher.planning.outline import TITLE_MAX

DIRECTIONS = ("up", "down", "indent", "outdent")


def siblings(goal_id: int, parent_id: int | None) -> list[MicroJob]:
    """The children of `parent_id` (or the top level), in display order."""
    same_parent = (
        MicroJob.parent_id.is_(None) if parent_id is None else MicroJob.parent_id == parent_id
    )
    return list(
        db.session.scalars(
            select(MicroJob)
            .where(MicroJob.goal_id == goal_id, same_parent)
            .order_by(MicroJob.position, MicroJob.id)
        )
    )


def _ancestors(job: MicroJob | None) -> list[MicroJob]:
    """`job` and everything above it, nearest first."""
    chain: list[MicroJob] = []
    seen: set[int] = set()
    while job is not None and job.id not in seen:
        seen.add(job.id)
        chain.append(job)
        job = job.parent
    return chain


def _renumber(jobs: list[MicroJob]) -> None:
    for index, job in enumerate(jobs):
        if job.position != index:
            job.position = index


def move_job(
    job: MicroJob, new_parent: MicroJob | None, position: int, *, actor: str = "owner"
) -> MicroJob:
    """Put `job` at `position` among `new_parent`'s children (None: the goal's top level).

    Refuses a parent in another goal, the job itself or one of its descendants, and a leaf
    whose work is under way (it would stop being a leaf and its status would be hidden).
    """
    if new_parent is not None:
        if new_parent.goal_id != job.goal_id:
            raise ValueError("a job can only move within its own goal")
        if any(node.id == job.id for node in _ancestors(new_parent)):
            raise ValueError("a job cannot move under itself or one of its own descendants")
        if not new_parent.children and new_parent.status not in (Status.DRAFT, Status.READY):
            raise InvalidTransition(
                new_parent.id,
                new_parent.status,
                "take children",
                ["only a draft or ready job can become a parent; work on it is under way"],
            )
    old_parent = job.parent
    new_parent_id = new_parent.id if new_parent is not None else None
    old_parent_id = job.parent_id
    if new_parent_id != old_parent_id:
        _carry_money(job, old_parent, new_parent)

    others = [s for s in siblings(job.goal_id, new_parent_id) if s.id != job.id]
    position = max(0, min(int(position), len(others)))
    others.insert(position, job)
    job.parent_id = new_parent_id
    _renumber(others)
    if new_parent_id != old_parent_id:
        _renumber([s for s in siblings(job.goal_id, old_parent_id) if s.id != job.id])
        for node in (old_parent, new_parent):
            if node is not None:
                db.session.expire(node, ["children"])
        db.session.expire(job, ["parent"])
    note(
        job,
        "job_moved",
        actor=actor,
        from_parent_id=old_parent_id,
        to_parent_id=new_parent_id,
        position=position,
    )
    db.session.commit()
    return job


def _carry_money(job: MicroJob, old_parent: MicroJob | None, new_parent: MicroJob | None) -> None:
    """Move the job's subtree amounts from its old envelopes to the new ones, or refuse."""
    reserved, spent = job.reserved_cents or 0, job.spent_cents or 0
    if not reserved and not spent:
        return
    old_chain = {n.id for n in _ancestors(old_parent)}
    new_chain = _ancestors(new_parent)
    leaving = old_chain - {n.id for n in new_chain}
    joining = [n for n in new_chain if n.id not in old_chain]
    for node in joining:
        condition = [MicroJob.id == node.id]
        if node.budget_cents is not None:
            condition.append(
                MicroJob.budget_cents - MicroJob.reserved_cents - MicroJob.spent_cents
                >= reserved + spent
            )
        ok = db.session.execute(
            update(MicroJob)
            .where(*condition)
            .values(
                reserved_cents=MicroJob.reserved_cents + reserved,
                spent_cents=MicroJob.spent_cents + spent,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if ok != 1:
            db.session.rollback()
            raise BudgetExceeded(
                f"the envelope on {node.title!r} has no room for "
                f"{format_cents(reserved + spent, job.goal.currency)} moving in with this job"
            )
    if leaving:
        db.session.execute(
            update(MicroJob)
            .where(MicroJob.id.in_(leaving))
            .values(
                reserved_cents=MicroJob.reserved_cents - reserved,
                spent_cents=MicroJob.spent_cents - spent,
            )
            .execution_options(synchronize_session=False)
        )
    for node in [*_ancestors(old_parent), *joining]:
        db.session.expire(node, ["reserved_cents", "spent_cents"])


def nudge(job: MicroJob, direction: str, *, actor: str = "owner") -> MicroJob:
    """The keyboard (and no-JS) moves: up, down, indent under the job above, outdent."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    row = siblings(job.goal_id, job.parent_id)
    index = next(i for i, s in enumerate(row) if s.id == job.id)
    if direction == "up":
        if index == 0:
            return job
        return move_job(job, job.parent, index - 1, actor=actor)
    if direction == "down":
        if index == len(row) - 1:
            return job
        return move_job(job, job.parent, index + 1, actor=actor)
    if direction == "indent":
        if index == 0:
            raise ValueError("there is no job above this one to indent it under")
        above = row[index - 1]
        return move_job(job, above, len(above.children), actor=actor)
    parent = job.parent
    if parent is None:
        raise ValueError("the job is already at the top level")
    parent_row = siblings(job.goal_id, parent.parent_id)
    parent_index = next(i for i, s in enumerate(parent_row) if s.id == parent.id)
    return move_job(job, parent.parent, parent_index + 1, actor=actor)


def rename_job(job: MicroJob, title: str, *, actor: str = "owner") -> MicroJob:
    """Edit a title in place; same rules as a title typed anywhere else."""
    title = " ".join((title or "").split())
    if not title:
        raise ValueError("a title cannot be empty")
    if len(title) > TITLE_MAX:
        raise ValueError(f"a title can be at most {TITLE_MAX} characters")
    return tree.update_job(job, actor=actor, title=title)
