"""Goal trees: create goals and jobs, split them, and read the tree back with rollups.

A parent's status and progress are derived from its leaves here (DESIGN rule 2); the stored
status of a job that has children is ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update

from dispatcher import lifecycle
from dispatcher.dispatch.locking import lock_job
from dispatcher.errors import InvalidChange, InvalidTransition, TermsFixed
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import MODES, Goal, MicroJob
from dispatcher.money import format_cents

GOAL_FIELDS = {
    "title", "why", "metric_name", "baseline", "target", "deadline", "currency",
    "budget_cents", "personal",
}  # fmt: skip
GOAL_MONEY_FIELDS = ("budget_cents", "currency")
JOB_FIELDS = {
    "title", "brief", "acceptance_criteria", "deliverable_kind", "estimate_minutes",
    "due_date", "planned_for", "price_cents", "mode", "channel", "channel_options",
    "assignments", "budget_cents",
}  # fmt: skip
#: What a job's order at its channel is made of: fixed while money is held for it there.
ORDER_TERMS = ("price_cents", "assignments", "channel", "channel_options", "mode")
TERM_LABELS = {
    "price_cents": "price",
    "assignments": "assignments",
    "channel": "channel",
    "channel_options": "channel options",
    "mode": "who does it",
}


def _record(goal: Goal, kind: str, actor: str, job: MicroJob | None = None, **data: Any) -> None:
    note(job if job is not None else goal, kind, actor=actor, **data)


def create_goal(owner_id: int, *, actor: str = "owner", **fields: Any) -> Goal:
    unknown = set(fields) - GOAL_FIELDS
    if unknown:
        raise TypeError(f"unknown goal fields: {sorted(unknown)}")
    goal = Goal(owner_id=owner_id, **fields)
    db.session.add(goal)
    db.session.flush()
    _record(goal, "goal_created", actor, title=goal.title)
    db.session.commit()
    return goal


def update_goal(goal: Goal, *, actor: str = "owner", **fields: Any) -> Goal:
    """Change the goal's fields; raises InvalidChange (and changes nothing) if the budget
    would fall below what is reserved and spent, or the currency change under that money."""
    unknown = set(fields) - GOAL_FIELDS
    if unknown:
        raise TypeError(f"unknown goal fields: {sorted(unknown)}")
    changed = {k: v for k, v in fields.items() if getattr(goal, k) != v}
    money = {k: changed.pop(k) for k in GOAL_MONEY_FIELDS if k in changed}
    if money:
        _change_goal_money(goal, money)
    for key, value in changed.items():
        setattr(goal, key, value)
    if changed or money:
        _record(goal, "goal_updated", actor, fields=sorted({*changed, *money}))
    db.session.commit()
    return goal


def _change_goal_money(goal: Goal, money: dict[str, Any]) -> None:
    """Write the budget and currency in one conditional UPDATE (DESIGN rule 5), so a
    reservation committed meanwhile is counted and the budget never ends below the money
    already held; refuse with the field at fault."""
    conditions = [Goal.id == goal.id]
    if "budget_cents" in money:
        conditions.append(Goal.reserved_cents + Goal.spent_cents <= money["budget_cents"])
    if "currency" in money:
        conditions += [Goal.reserved_cents == 0, Goal.spent_cents == 0]
    written = db.session.execute(
        update(Goal).where(*conditions).values(**money).execution_options(synchronize_session=False)
    ).rowcount
    if written == 1:
        db.session.expire(goal, list(money))
        return
    db.session.rollback()  # nothing of this edit is kept
    held = goal.reserved_cents + goal.spent_cents
    if "currency" not in money or money.get("budget_cents", held) < held:
        raise InvalidChange(
            "budget_cents",
            f"{format_cents(held, goal.currency)} of this goal is already reserved or spent: "
            "the budget cannot be lower than that",
        )
    raise InvalidChange(
        "currency",
        f"{format_cents(held, goal.currency)} is already reserved or spent in "
        f"{goal.currency}: the currency cannot change",
    )


def next_position(goal_id: int, parent_id: int | None) -> int:
    """The position after `parent_id`'s last child (or the goal's last top-level job)."""
    same_parent = (
        MicroJob.parent_id.is_(None) if parent_id is None else MicroJob.parent_id == parent_id
    )
    current = db.session.scalar(
        select(func.max(MicroJob.position)).where(MicroJob.goal_id == goal_id, same_parent)
    )
    return 0 if current is None else current + 1


def add_job(
    goal: Goal,
    *,
    title: str,
    parent: MicroJob | None = None,
    actor: str = "owner",
    commit: bool = True,
    **fields: Any,
) -> MicroJob:
    """Add a job at the end of `parent`'s children (or at the top level)."""
    position = next_position(goal.id, parent.id if parent else None)
    job = MicroJob(**new_job(goal, title=title, parent=parent, position=position, **fields))
    db.session.add(job)
    db.session.flush()
    job_created(goal, job, actor)
    if commit:
        db.session.commit()
    return job


def new_job(
    goal: Goal, *, title: str, parent: MicroJob | None, position: int, **fields: Any
) -> dict[str, Any]:
    """A new job's checked column values: `add_job` and `build.create_subtree` (which
    inserts a whole level of a tree at once) share one set of field checks."""
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise TypeError(f"unknown job fields: {sorted(unknown)}")
    if parent is not None and parent.goal_id != goal.id:
        raise ValueError("parent belongs to another goal")
    if fields.get("mode") and fields["mode"] not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    return {
        "owner_id": goal.owner_id,
        "goal_id": goal.id,
        "parent_id": parent.id if parent else None,
        "position": position,
        "title": title.strip(),
        **fields,
    }


def job_created(goal: Goal, job: MicroJob, actor: str) -> None:
    """The `job_created` event of a flushed job."""
    _record(goal, "job_created", actor, job, title=job.title, parent_id=job.parent_id)


def split_job(job: MicroJob, titles: Iterable[str], *, actor: str = "owner") -> list[MicroJob]:
    """Give `job` one child per title, in order; the job becomes a parent."""
    titles = [t.strip() for t in titles if t and t.strip()]
    if not titles:
        raise ValueError("give at least one title to split into")
    if job.status not in (Status.DRAFT, Status.READY):
        raise InvalidTransition(job.id, job.status, "split", ["only draft or ready jobs split"])
    children = [add_job(job.goal, title=t, parent=job, actor=actor, commit=False) for t in titles]
    _record(job.goal, "job_split", actor, job, children=[c.id for c in children])
    db.session.commit()
    return children


def update_job(job: MicroJob, *, actor: str = "owner", **fields: Any) -> MicroJob:
    """Change the job's fields. Raises (and changes nothing) TermsFixed if its order terms
    would change while money is reserved or paid for it, InvalidChange if its budget
    envelope would fall below what its subtree holds."""
    unknown = set(fields) - JOB_FIELDS
    if unknown:
        raise TypeError(f"unknown job fields: {sorted(unknown)}")
    if fields.get("mode") and fields["mode"] not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
    if changed.keys() & {*ORDER_TERMS, "budget_cents"}:
        # Lock the row first: a dispatch (or a reservation below) commits before this edit
        # is checked, or waits for it; never both at once.
        lock_job(job)
        changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
        _check_money_change(job, changed)
    for key, value in changed.items():
        setattr(job, key, value)
    if changed:
        _record(job.goal, "job_updated", actor, job, fields=sorted(changed))
    db.session.commit()
    return job


def _check_money_change(job: MicroJob, changed: dict[str, Any]) -> None:
    terms = [name for name in ORDER_TERMS if name in changed]
    if terms and job.status in lifecycle.TERMS_FIXED:
        db.session.rollback()
        what = ", ".join(TERM_LABELS[name] for name in terms)
        if job.status == Status.PAID:
            reason = f"“{job.title}” is paid: its {what} can no longer change"
        else:
            reason = (
                f"“{job.title}” is {job.status.replace('_', ' ')} at {job.channel}: its {what} "
                "cannot change while money is reserved for it; cancel it first"
            )
        raise TermsFixed(terms[0], reason)
    envelope = changed.get("budget_cents")
    held = job.reserved_cents + job.spent_cents
    if envelope is not None and envelope < held:
        db.session.rollback()
        currency = job.goal.currency
        raise InvalidChange(
            "budget_cents",
            f"{format_cents(held, currency)} is already reserved or spent under "
            f"“{job.title}”: its budget cannot be lower than that",
        )


def set_mode(
    job: MicroJob,
    mode: str,
    channel: str | None = None,
    channel_options: dict[str, Any] | None = None,
    *,
    actor: str = "owner",
) -> MicroJob:
    """Mark a job keep (I do it) or delegate (to `channel`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    fields: dict[str, Any] = {"mode": mode}
    if mode == "delegate":
        if not channel:
            raise ValueError("pick a channel to delegate to")
        fields["channel"] = channel
        fields["channel_options"] = channel_options or {}
    return update_job(job, actor=actor, **fields)


def delete_job(job: MicroJob, *, actor: str = "owner") -> None:
    if any(j.status not in (Status.DRAFT, Status.READY, Status.CANCELLED) for j in _subtree(job)):
        raise InvalidTransition(
            job.id, job.status, "delete", ["cancel it instead: work is under way"]
        )
    _record(job.goal, "job_deleted", actor, None, job_id=job.id, title=job.title)
    db.session.delete(job)
    db.session.commit()


def act(job: MicroJob, action: str, *, actor: str = "owner") -> Status:
    """Apply a lifecycle action to one of the owner's own jobs and commit."""
    status = lifecycle.transition(job, action, actor=actor)
    if status in lifecycle.COMPLETE:
        from dispatcher.models._base import utcnow

        job.finished_at = utcnow()
    db.session.commit()
    return status


def _subtree(job: MicroJob) -> list[MicroJob]:
    out, stack = [], [job]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(node.children)
    return out


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    minutes_done: int = 0
    minutes_total: int = 0
    reserved_cents: int = 0
    spent_cents: int = 0

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def percent_by_estimate(self) -> int:
        return round(100 * self.minutes_done / self.minutes_total) if self.minutes_total else 0

    def add(self, other: Progress) -> None:
        self.done += other.done
        self.total += other.total
        self.minutes_done += other.minutes_done
        self.minutes_total += other.minutes_total
        self.reserved_cents += other.reserved_cents
        self.spent_cents += other.spent_cents


@dataclass
class TreeNode:
    job: MicroJob
    depth: int
    children: list[TreeNode] = field(default_factory=list)
    progress: Progress = field(default_factory=Progress)
    status: Status = Status.DRAFT

    @property
    def is_leaf(self) -> bool:
        return not self.children


def goal_tree(goal: Goal) -> list[TreeNode]:
    """The whole tree in one query, with derived statuses and rollups on every node."""
    jobs = db.session.scalars(
        select(MicroJob).where(MicroJob.goal_id == goal.id).order_by(MicroJob.position)
    ).all()
    by_parent: dict[int | None, list[MicroJob]] = defaultdict(list)
    for job in jobs:
        by_parent[job.parent_id].append(job)

    def build(job: MicroJob, depth: int) -> TreeNode:
        node = TreeNode(job=job, depth=depth)
        node.children = [build(c, depth + 1) for c in by_parent.get(job.id, [])]
        if node.children:
            leaves: list[str] = []
            for child in node.children:
                node.progress.add(child.progress)
                leaves.extend(_leaf_statuses(child))
            node.status = lifecycle.derived_status(leaves)
        else:
            node.status = Status(job.status)
            if job.status != Status.CANCELLED:
                done = job.status in lifecycle.COMPLETE
                minutes = job.estimate_minutes or 0
                node.progress = Progress(
                    done=int(done),
                    total=1,
                    minutes_done=minutes if done else 0,
                    minutes_total=minutes,
                    reserved_cents=job.reserved_cents,
                    spent_cents=job.spent_cents,
                )
        return node

    return [build(job, 0) for job in by_parent.get(None, [])]


def _leaf_statuses(node: TreeNode) -> list[str]:
    if node.is_leaf:
        return [node.status]
    out: list[str] = []
    for child in node.children:
        out.extend(_leaf_statuses(child))
    return out


def walk(nodes: Iterable[TreeNode]) -> Iterable[TreeNode]:
    """Depth-first, in display order."""
    for node in nodes:
        yield node
        yield from walk(node.children)


def goal_progress(goal: Goal) -> Progress:
    """Progress of the goal's leaves, counted in SQL (no tree load)."""
    parent_ids = select(MicroJob.parent_id).where(
        MicroJob.goal_id == goal.id, MicroJob.parent_id.is_not(None)
    )
    leaves = (
        select(
            MicroJob.status,
            func.count(),
            func.coalesce(func.sum(MicroJob.estimate_minutes), 0),
        )
        .where(MicroJob.goal_id == goal.id, MicroJob.id.not_in(parent_ids))
        .group_by(MicroJob.status)
    )
    progress = Progress(reserved_cents=goal.reserved_cents, spent_cents=goal.spent_cents)
    for status, count, minutes in db.session.execute(leaves):
        if status == Status.CANCELLED:
            continue
        progress.total += count
        progress.minutes_total += int(minutes)
        if status in lifecycle.COMPLETE:
            progress.done += count
            progress.minutes_done += int(minutes)
    return progress


def leaves_of(goal: Goal) -> list[MicroJob]:
    parent_ids = select(MicroJob.parent_id).where(
        MicroJob.goal_id == goal.id, MicroJob.parent_id.is_not(None)
    )
    return list(
        db.session.scalars(
            select(MicroJob)
            .where(MicroJob.goal_id == goal.id, MicroJob.id.not_in(parent_ids))
            .order_by(MicroJob.id)
        )
    )
