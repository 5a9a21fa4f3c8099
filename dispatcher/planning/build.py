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


@dataclass
class NewJob:
    """A job to create: its title, other `tree.JOB_FIELDS`, children, and `done` (checked)."""

    title: str
    fields: dict[str, Any] = field(default_factory=dict)
    children: list[NewJob] = field(default_factory=list)
    done: bool = False


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
    lifecycle, so they carry the same Event a job ticked off by hand would.
    """
    check_size(specs)
    if not specs:
        return []  # an empty bulk INSERT would insert one row of defaults
    made: dict[int, MicroJob] = {}  # id(spec) -> its job
    # One level of the tree at a time: one position query, and one bulk INSERT ... RETURNING
    # per level, instead of a query and a flush per job (7 s for a 2,000-job import). The
    # unit of work would insert a self-referencing table row by row.
    start = tree.next_position(goal.id, parent.id if parent else None)
    level: list[tuple[list[NewJob], MicroJob | None, int]] = [(specs, parent, start)]
    while level:
        here = [
            (spec, tree.new_job(goal, title=spec.title, parent=under, position=first + i,
                                **spec.fields))
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
            tree.job_created(goal, job, actor)
        for spec, _ in here:  # events alike stay together: they are inserted in batches
            job = made[id(spec)]
            if spec.done and not spec.children and job.status in (Status.DRAFT, Status.READY):
                lifecycle.transition(job, "complete", actor=actor)
                job.finished_at = utcnow()
            if spec.children:
                level.append((spec.children, job, 0))
    # collections loaded before the insert do not know the new rows
    db.session.expire(goal, ["jobs"])
    if parent is not None:
        db.session.expire(parent, ["children"])
    return [made[id(spec)] for spec in walk_new(specs)]


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
