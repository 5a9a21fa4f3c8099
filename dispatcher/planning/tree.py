"""Goal trees: create goals and jobs, split them, and read the tree back with rollups.

A parent's status and progress are derived from its leaves here (DESIGN rule 2); the stored
status of a job that has children is ignored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from dispatcher import connections, lifecycle, versions
from dispatcher.errors import InvalidChange, InvalidTransition, NotDeletable, TermsFixed
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.locking import lock_job
from dispatcher.models import (
    MODES,
    Delivery,
    Dispatch,
    DispatchState,
    Goal,
    MicroJob,
    PushState,
    Review,
)
from dispatcher.money import format_cents

GOAL_FIELDS = {
    "title", "why", "metric_name", "baseline", "target", "deadline", "currency",
    "budget_cents", "personal",
}  # fmt: skip
GOAL_MONEY_FIELDS = ("budget_cents", "currency")
JOB_FIELDS = {
    "title", "brief", "acceptance_criteria", "deliverable_kind", "estimate_minutes",
    "due_date", "planned_for", "price_cents", "free", "mode", "channel", "channel_options",
    "assignments", "budget_cents", "connection_id", "person_id",
}  # fmt: skip
#: What a job's order at its channel is made of: fixed while money is held for it there.
ORDER_TERMS = (
    "price_cents", "free", "assignments", "channel", "connection_id", "channel_options", "mode",
    "person_id",
)  # fmt: skip
TERM_LABELS = {
    "price_cents": "price",
    "free": "free mark",
    "assignments": "assignments",
    "channel": "channel",
    "connection_id": "connection",
    "channel_options": "channel options",
    "person_id": "person",
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
    connections.bind(job, fields.get("connection_id"))
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
    _record(goal, "job_created", actor, job, **_created(job))


def jobs_created(jobs: Iterable[MicroJob], actor: str) -> None:
    """The `job_created` events of many flushed jobs, in one executemany (a bulk create)."""
    lifecycle.record_many(
        [lifecycle.event_values(j, "job_created", actor=actor, data=_created(j)) for j in jobs]
    )


def _created(job: MicroJob) -> dict[str, Any]:
    return {"title": job.title, "parent_id": job.parent_id}


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
    if changed.keys() & {*ORDER_TERMS, *versions.TEXT_FIELDS, "budget_cents"}:
        # Lock the row first: a dispatch (or a reservation below) commits before this edit
        # is checked, or waits for it; never both at once.
        lock_job(job)
        changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
        _check_money_change(job, changed)
    version = versions.bump_if_held(job, changed)  # the text an order holds stays as it was
    for key, value in changed.items():
        setattr(job, key, value)
    if changed.keys() & {"mode", "channel", "connection_id"}:
        connections.bind(job, changed.get("connection_id"))
    if changed:
        extra = {"version": version} if version is not None else {}
        _record(job.goal, "job_updated", actor, job, fields=sorted(changed), **extra)
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
    if changed.get("free", job.free) and changed.get("price_cents", job.price_cents):
        db.session.rollback()
        raise InvalidChange(
            "free" if "free" in changed else "price_cents",
            f"“{job.title}” is marked free: a free job has no price (clear one or the other)",
        )
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
    connection_id: int | None = None,
    actor: str = "owner",
    extra: dict[str, Any] | None = None,
) -> MicroJob:
    """Mark a job keep (I do it) or delegate: to one of the owner's connections, or to
    `channel` (the owner's connection of that adapter is bound, if any). `extra`: more job
    fields changed in the same edit (the person, and the price their rate fills in)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    fields: dict[str, Any] = {"mode": mode, **(extra or {})}
    if mode == "delegate":
        if connection_id is not None:
            connection = connections.get(connection_id, job.owner_id)
            channel = connection.adapter
            fields["connection_id"] = connection.id
        if not channel:
            raise ValueError("pick a channel to delegate to")
        fields["channel"] = channel
        fields["channel_options"] = channel_options or {}
    return update_job(job, actor=actor, **fields)


#: What a subtree may be in to be deleted: nothing started, or cancelled.
DELETABLE = frozenset({Status.DRAFT, Status.READY, Status.CANCELLED})


def deletion_blocker(job: MicroJob) -> str | None:
    """Why `job` and its subtree cannot be deleted, or None. The one rule the page and the
    API share: nothing started, no money held (reserved or spent) on any node, and no call
    still owed to a platform (an order being placed, a cancel or a review decision not yet
    sent), since deleting would lose the books or leave an order live."""
    nodes = _subtree(job)
    ids = [n.id for n in nodes]
    for node in sorted(nodes, key=lambda n: bool(n.children)):  # name a leaf, not its rollup
        if node.reserved_cents or node.spent_cents:
            return f"“{node.title}” holds money (reserved or spent): cancel it instead"
        if node.status not in DELETABLE:
            return f"“{node.title}” is {node.status.replace('_', ' ')}: cancel it instead"
    owed = or_(
        Dispatch.state.in_((DispatchState.PENDING, DispatchState.PLACED)),
        Dispatch.next_attempt_at.is_not(None),
    )
    if db.session.scalar(select(Dispatch.id).where(Dispatch.job_id.in_(ids), owed).limit(1)):
        return "a call to the platform is still owed (an order or its cancel): try again later"
    pushes = (
        select(Review.id)
        .join(Delivery, Review.delivery_id == Delivery.id)
        .where(Delivery.job_id.in_(ids), Review.push_state == PushState.OWED)
        .where(Delivery.dispatch_id.is_not(None))
        .limit(1)
    )
    if db.session.scalar(pushes):
        return "a review decision is still owed to the platform: try again later"
    return None


def delete_job(job: MicroJob, *, actor: str = "owner") -> list[int]:
    """Delete `job` with its whole subtree, or raise NotDeletable (changing nothing); returns
    the ids deleted. Their Events stay (the audit trail), with the job reference cleared."""
    lock_job(job)  # a dispatch of a node commits first (and is seen below), or waits
    reason = deletion_blocker(job)
    if reason is not None:
        db.session.rollback()
        raise NotDeletable(job.id, job.status, reason)
    nodes = _subtree(job)
    ids = [n.id for n in nodes]
    _record(job.goal, "job_deleted", actor, None, job_id=job.id, title=job.title, jobs=ids)
    for node in nodes:
        db.session.expunge(node)
    db.session.execute(
        delete(MicroJob).where(MicroJob.id.in_(ids)).execution_options(synchronize_session=False)
    )
    db.session.commit()
    return ids


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
    #: a parent's leaves, group by group (None for a leaf): what pages show for a parent
    summary: lifecycle.Summary | None = None

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
            node.summary = lifecycle.summarize(leaves)
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
