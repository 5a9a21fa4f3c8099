"""The goal page's tree, folded: the top levels and the subtrees the owner opened.

A 2,000-job goal rendered whole was 3.5 MB and 1.2 s (issue 11). Here every job's numbers
(status, estimate, money) are read as plain rows in one query, so each node's rollup and
summary stay exact; full rows are loaded, in one more query, only for the nodes shown. What is
open is a set of job ids kept in the page's URL (`?open=12,40`): opening a job shows its
children and reveals its ancestors, so a link to any job (after an action, say) shows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from dispatcher import lifecycle
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Goal, MicroJob
from dispatcher.planning.tree import Progress

#: Levels are opened one by one while the page would show at most this many jobs: a small
#: goal shows whole, a big one its top levels.
AUTO_OPEN = 80
#: How many ids `?open=` keeps: more than any owner opens by hand, few enough to bound a URL.
MAX_OPEN = 200


@dataclass
class FoldedNode:
    """One shown job with its subtree's rollup; `job` is the full row."""

    job: MicroJob
    depth: int
    status: Status
    progress: Progress
    summary: lifecycle.Summary | None
    child_count: int
    is_open: bool

    @property
    def is_leaf(self) -> bool:
        return self.child_count == 0


@dataclass
class FoldedTree:
    nodes: list[FoldedNode]  # the shown jobs, depth first, in display order
    opened: frozenset[int]  # the ids open now (what the URL keeps)
    total: int  # jobs in the goal
    leaves: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    # every leaf as (id, mode, channel, status): enough for counts over the whole goal
    parents: dict[int, int | None] = field(default_factory=dict)

    def without(self, job_id: int) -> frozenset[int]:
        """The open set with `job_id` folded: it and every open job under it closed (an open
        descendant would open it again)."""
        return frozenset(i for i in self.opened if job_id not in self._path(i))

    def _path(self, job_id: int) -> set[int]:
        path, node = set(), job_id
        while node is not None and node not in path:
            path.add(node)
            node = self.parents.get(node)
        return path


class _Row:
    """One job's numbers, and its subtree's once rolled up: plain slots, as thousands are
    made per page view."""

    __slots__ = (
        "id", "parent_id", "status", "mode", "channel", "minutes", "reserved", "spent",
        "children", "done", "total", "minutes_done", "minutes_total", "sub_reserved",
        "sub_spent", "statuses",
    )  # fmt: skip

    def __init__(self, id, parent_id, status, mode, channel, minutes, reserved, spent) -> None:  # noqa: A002
        self.id, self.parent_id, self.status, self.mode = id, parent_id, status, mode
        self.channel, self.minutes = channel, minutes or 0
        self.reserved, self.spent = reserved, spent
        self.children: list[_Row] = []

    @property
    def progress(self) -> Progress:
        return Progress(
            self.done, self.total, self.minutes_done, self.minutes_total,
            self.sub_reserved, self.sub_spent,
        )  # fmt: skip


def parse_open(raw: str | None) -> set[int]:
    """The ids in `?open=` ("12,40"); anything that is not an id is ignored."""
    ids = {int(part) for part in (raw or "").split(",") if part.strip().isdigit()}
    return set(sorted(ids)[:MAX_OPEN])


def format_open(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in sorted(set(ids))[:MAX_OPEN])


def folded_tree(goal: Goal, opened: Iterable[int] = (), *, under: int | None = None) -> FoldedTree:
    """The goal's tree with `opened` jobs (and their ancestors) open; `under` limits the
    shown nodes to that job's descendants (a subtree loaded when it is opened)."""
    rows, by_id, tops = _tree(goal)

    wanted = {i for i in opened if i in by_id}
    if under is not None and under in by_id:
        wanted.add(under)
    expanded: set[int] = set()
    for job_id in wanted:
        node: _Row | None = by_id[job_id]
        while node is not None and node.id not in expanded:
            expanded.add(node.id)
            node = by_id.get(node.parent_id) if node.parent_id is not None else None
    _auto_open(tops, expanded)

    shown: list[tuple[_Row, int]] = []
    roots = by_id[under].children if under is not None and under in by_id else tops
    base = _depth(by_id, under) + 1 if under is not None and under in by_id else 0
    stack = [(row, base) for row in reversed(roots)]
    while stack:
        row, depth = stack.pop()
        shown.append((row, depth))
        if row.id in expanded:
            stack.extend((child, depth + 1) for child in reversed(row.children))

    jobs = _load([row.id for row, _ in shown])
    nodes = [
        FoldedNode(
            job=jobs[row.id],
            depth=depth,
            status=_status(row),
            progress=row.progress,
            summary=lifecycle.summarize_counts(row.statuses) if row.children else None,
            child_count=len(row.children),
            is_open=row.id in expanded and bool(row.children),
        )
        for row, depth in shown
    ]
    leaves = [(r.id, r.mode, r.channel, r.status) for r in rows if not r.children]
    parents = {row.id: row.parent_id for row in rows}
    return FoldedTree(nodes, frozenset(wanted), len(rows), leaves, parents)


def _tree(goal: Goal) -> tuple[list[_Row], dict[int, _Row], list[_Row]]:
    """Every job's row, by id, and the top ones, rolled up (one query)."""
    rows = _rows(goal)
    by_id = {row.id: row for row in rows}
    tops: list[_Row] = []
    for row in rows:
        parent = by_id.get(row.parent_id) if row.parent_id is not None else None
        (parent.children if parent is not None else tops).append(row)
    _roll_up(tops)
    return rows, by_id, tops


def parent_summaries(goal: Goal, ids: Iterable[int]) -> dict[int, tuple[lifecycle.Summary, Status]]:
    """The summary and derived status of each parent among `ids`, as the goal page shows
    them (what a live page refreshes when one of the goal's jobs moves): one query."""
    _, by_id, _ = _tree(goal)
    return {
        job_id: (lifecycle.summarize_counts(by_id[job_id].statuses), _status(by_id[job_id]))
        for job_id in ids
        if job_id in by_id and by_id[job_id].children
    }


def _rows(goal: Goal) -> list[_Row]:
    columns = MicroJob.__table__.c
    query = (
        select(
            columns.id, columns.parent_id, columns.status, columns.mode, columns.channel,
            columns.estimate_minutes, columns.reserved_cents, columns.spent_cents,
        )
        .where(columns.goal_id == goal.id)
        .order_by(columns.position, columns.id)
    )  # fmt: skip
    return [_Row(*values) for values in db.session.connection().execute(query)]


def _roll_up(tops: list[_Row]) -> None:
    """Each node's progress, money and leaves per status, children first (no recursion:
    trees may be deep). Cancelled leaves count for nothing, as in tree.goal_tree."""
    order, stack = [], list(tops)
    while stack:
        row = stack.pop()
        order.append(row)
        stack.extend(row.children)
    complete = lifecycle.COMPLETE
    for row in reversed(order):
        if not row.children:
            row.statuses = {row.status: 1}
            counted = row.status != Status.CANCELLED
            done = counted and row.status in complete
            row.done, row.total = int(done), int(counted)
            row.minutes_total = row.minutes if counted else 0
            row.minutes_done = row.minutes if done else 0
            row.sub_reserved = row.reserved if counted else 0
            row.sub_spent = row.spent if counted else 0
            continue
        statuses: dict[str, int] = {}
        done = total = minutes_done = minutes_total = reserved = spent = 0
        for child in row.children:
            done += child.done
            total += child.total
            minutes_done += child.minutes_done
            minutes_total += child.minutes_total
            reserved += child.sub_reserved
            spent += child.sub_spent
            for status, n in child.statuses.items():
                statuses[status] = statuses.get(status, 0) + n
        row.done, row.total, row.statuses = done, total, statuses
        row.minutes_done, row.minutes_total = minutes_done, minutes_total
        row.sub_reserved, row.sub_spent = reserved, spent


def _status(row: _Row) -> Status:
    return lifecycle.derived_status(row.statuses) if row.children else Status(row.status)


def _auto_open(tops: list[_Row], expanded: set[int]) -> None:
    """Open whole levels, top down, while the page stays within AUTO_OPEN jobs."""
    level, shown = tops, len(tops)
    while level:
        below = [child for row in level for child in row.children]
        if not below or shown + len(below) > AUTO_OPEN:
            return
        expanded.update(row.id for row in level if row.children)
        shown += len(below)
        level = below


def _depth(by_id: dict[int, _Row], job_id: int | None) -> int:
    depth, row = 0, by_id.get(job_id) if job_id is not None else None
    while row is not None and row.parent_id is not None:
        depth += 1
        row = by_id.get(row.parent_id)
    return depth


def _load(ids: list[int]) -> dict[int, MicroJob]:
    if not ids:
        return {}
    jobs = db.session.scalars(select(MicroJob).where(MicroJob.id.in_(ids))).all()
    return {job.id: job for job in jobs}
