"""Create a whole subtree of new jobs in the caller's transaction.

Pasted outlines, playbooks, cadence instances and imports all end here, so every way of adding
many jobs at once goes through `tree.new_job` (one set of field checks, one `job_created` event
per job) and leaves the commit to the caller: the subtree appears whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert

from dispatcher import lifecycle
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Goal, MicroJob
from dispatcher.models._base import utcnow
from dispatcher.planning import tree

#: More than this in one go is a mistake (or an attack), not a plan.
MAX_NEW_JOBS = 5000
#: Deeper than this is not a breakdown any owner will read.
MAX_DEPTH = 40


#: Columns outside `tree.JOB_FIELDS` that a new job may start with: what an import restores
#: along with its status (money and finish times as exported; nothing reserved).
RESTORED = frozenset({"finished_at", "spent_cents"})


@dataclass
class NewJob:
    """A job to create: its title, other `tree.JOB_FIELDS`, children, and `done` (checked).

    An import also gives `move`, the transition from draft to the status it restores (planned
    with `lifecycle.plan`, so the table is checked before anything is written), and
    `restored` (`RESTORED` columns)."""

    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    children: list[NewJob] = field(default_factory=list)
    done: bool = False
    move: lifecycle.Move | None = None
    restored: dict[str, Any] = field(default_factory=dict)


def walk_new(specs: list[NewJob]) -> Iterator[NewJob]:
    """Depth-first, parents before children, in order: the order `create_subtree` creates."""
    stack = list(reversed(specs))
    while stack:
        spec = stack.pop()
        yield spec
        stack.extend(reversed(spec.children))


def count_new(specs: list[NewJob]) -> int:
    return sum(1 for _ in walk_new(specs))


def check_size(specs: list[NewJob], limit: int = MAX_NEW_JOBS) -> None:
    """Refuse batches that are too large or too deep before anything is written."""
    total = 0
    stack = [(spec, 1) for spec in specs]
    while stack:
        spec, depth = stack.pop()
        total += 1
        if total > limit:
            raise ValueError(f"that would create more than {limit} jobs at once")
        if depth > MAX_DEPTH:
            raise ValueError(f"the breakdown is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in spec.children)


def create_subtree(
    goal: Goal, parent: MicroJob | None, specs: list[NewJob], *, actor: str = "owner"
) -> list[MicroJob]:
    """Create `specs` under `parent` (or at the goal's top level); the caller commits.

    Returns every created job in `walk_new` order. Checked leaves are completed through the
    lifecycle, so they carry the same Event a job ticked off by hand would; so does each
    `move` of an import. A job is inserted in its final status (one INSERT, never an UPDATE
    after it), and the events go in with one executemany per kind.
    """
    check_size(specs)
    if not specs:
        return []  # an empty bulk INSERT would insert one row of defaults
    moves = {id(spec): _move(spec) for spec in walk_new(specs)}  # refused before any write
    made: dict[int, MicroJob] = {}  # id(spec) -> its job
    # One level of the tree at a time: one position query, and one bulk INSERT ... RETURNING
    # per level, instead of a query and a flush per job (7 s for a 2,000-job import). The
    # unit of work would insert a self-referencing table row by row.
    start = tree.next_position(goal.id, parent.id if parent else None)
    level: list[tuple[list[NewJob], MicroJob | None, int]] = [(specs, parent, start)]
    while level:
        here = [
            (spec, _values(goal, spec, under, first + i, moves[id(spec)]))
            for siblings, under, first in level
            for i, spec in enumerate(siblings)
        ]  # fmt: skip
        _same_keys([values for _, values in here])
        # RETURNING need not follow the VALUES order (SQLAlchemy would then insert row by
        # row); within a level, (parent, position) names each row.
        jobs = {
            (job.parent_id, job.position): job
            for job in db.session.scalars(
                insert(MicroJob).returning(MicroJob).execution_options(render_nulls=True),
                [values for _, values in here],
            )
        }
        level = []
        for spec, values in here:
            made[id(spec)] = job = jobs[values["parent_id"], values["position"]]
            if spec.children:
                level.append((spec.children, job, 0))
    created = [made[id(spec)] for spec in walk_new(specs)]
    tree.jobs_created(created, actor)
    lifecycle.record_moves(
        [(made[key], move) for key, move in moves.items() if move is not None], actor=actor
    )
    # collections loaded before the insert do not know the new rows
    db.session.expire(goal, ["jobs"])
    if parent is not None:
        db.session.expire(parent, ["children"])
    return created


def _move(spec: NewJob) -> lifecycle.Move | None:
    """The transition `spec` is created with: its own (an import's), or completing a checked
    leaf. A new job starts in draft."""
    if spec.move is not None:
        return lifecycle.plan(spec.move.action, start=spec.move.before, data=spec.move.data)
    if spec.done and not spec.children:
        return lifecycle.plan("complete")
    return None


def _values(
    goal: Goal, spec: NewJob, parent: MicroJob | None, position: int, move: lifecycle.Move | None
) -> dict[str, Any]:
    """The row of `spec`, already in the status its move leads to."""
    unknown = spec.restored.keys() - RESTORED
    if unknown:
        raise TypeError(f"unknown restored fields: {sorted(unknown)}")
    values = tree.new_job(goal, title=spec.title, parent=parent, position=position, **spec.fields)
    values.update(spec.restored)
    if move is not None:
        if move.before != Status.DRAFT:
            raise ValueError(f"a new job starts in draft, not {move.before}")
        values["status"] = move.after
        if spec.move is None:  # a checked leaf: done now
            values["finished_at"] = utcnow()
    return values


def _same_keys(rows: list[dict[str, Any]]) -> None:
    """Give every row the same columns, a missing or None one its column default: the ORM
    starts a new INSERT wherever the next row's columns, or which of them are None, differ
    (hundreds of small INSERTs for a mixed tree), unless NULLs are rendered as values."""
    columns = MicroJob.__table__.c
    for key in set().union(*rows):
        default = columns[key].default
        for row in rows:
            if row.get(key) is None:
                if default is None:
                    row[key] = None
                else:
                    row[key] = default.arg(None) if default.is_callable else default.arg
