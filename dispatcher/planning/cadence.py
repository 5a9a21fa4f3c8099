"""Repeating micro-goals: "1 guest post a week for 52 weeks".

A Cadence owns a snapshot of a playbook and its parameters. Period k starts on
`starts_on + k * every unit`; when a period has started (in the owner's time zone) the
scheduler builds its instance: a container job under the cadence's parent (or at the goal's
top level) with the playbook's jobs inside, due at the period's end. The CadenceRun row is
inserted first in that transaction and is unique per (cadence, period), so two schedulers
racing on the same period build it once: the loser's insert fails and it rolls back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dispatcher import lifecycle
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import CADENCE_UNITS, Cadence, CadenceRun, Goal, MicroJob, Owner
from dispatcher.planning import tree
from dispatcher.planning.build import create_subtree
from dispatcher.planning.playbook_schema import PlaybookError
from dispatcher.planning.playbooks import (
    Playbook,
    check_can_take_children,
    expand,
    from_definition,
    parse_params,
)
from dispatcher.timezones import local_date

MAX_PERIODS = 1000
MAX_EVERY = 365


def step(cadence: Cadence) -> timedelta:
    return timedelta(days=cadence.every * (7 if cadence.unit == "week" else 1))


def period_start(cadence: Cadence, index: int) -> date:
    return cadence.starts_on + index * step(cadence)


def period_end(cadence: Cadence, index: int) -> date:
    return period_start(cadence, index + 1) - timedelta(days=1)


def total_periods(cadence: Cadence) -> int | None:
    """How many periods the cadence has in all; None when it runs on without an end."""
    totals = []
    if cadence.count is not None:
        totals.append(cadence.count)
    if cadence.until is not None:
        days = (cadence.until - cadence.starts_on).days
        totals.append(max(0, days // step(cadence).days + 1))
    return min(totals) if totals else None


def periods_started(cadence: Cadence, today: date) -> int:
    """How many periods have begun by `today` (capped by count / until)."""
    if today < cadence.starts_on:
        return 0
    started = (today - cadence.starts_on).days // step(cadence).days + 1
    total = total_periods(cadence)
    return started if total is None else min(started, total)


def local_today(owner_timezone: str | None, now: datetime) -> date:
    return local_date(owner_timezone, now)


def describe(cadence: Cadence) -> str:
    unit = cadence.unit if cadence.every == 1 else f"{cadence.every} {cadence.unit}s"
    ends = ""
    if cadence.count is not None:
        ends = f", {cadence.count} times"
    if cadence.until is not None:
        ends += f", until {cadence.until.isoformat()}"
    return f"every {unit} from {cadence.starts_on.isoformat()}{ends}"


def create_cadence(
    goal: Goal,
    playbook: Playbook,
    params: Mapping[str, Any] | None = None,
    *,
    title: str,
    every: int = 1,
    unit: str = "week",
    starts_on: date,
    count: int | None = None,
    until: date | None = None,
    parent: MicroJob | None = None,
    actor: str = "owner",
) -> Cadence:
    """Set up a repeating micro-goal; the playbook and parameters are frozen into it."""
    title = " ".join((title or "").split())
    if not title:
        raise ValueError("title: give the repeating goal a name, e.g. 'Guest post'")
    if len(title) > 150:
        raise ValueError("title: at most 150 characters")
    if unit not in CADENCE_UNITS:
        raise ValueError(f"unit: must be one of {', '.join(CADENCE_UNITS)}")
    if not 1 <= int(every) <= MAX_EVERY:
        raise ValueError(f"every: must be between 1 and {MAX_EVERY}")
    if count is not None and not 1 <= int(count) <= MAX_PERIODS:
        raise ValueError(f"count: must be between 1 and {MAX_PERIODS}")
    if until is not None and until < starts_on:
        raise ValueError("until: must be on or after the start date")
    if parent is not None:
        if parent.goal_id != goal.id:
            raise ValueError("parent: belongs to another goal")
        check_can_take_children(parent)
    values = parse_params(playbook, params)
    _refuse_duplicate(goal, parent, title, playbook.key, int(every), unit, starts_on)
    cadence = Cadence(
        owner_id=goal.owner_id,
        goal_id=goal.id,
        parent_id=parent.id if parent is not None else None,
        title=title,
        playbook=playbook.key,
        params=values,
        definition=playbook.raw,
        every=int(every),
        unit=unit,
        starts_on=starts_on,
        count=int(count) if count is not None else None,
        until=until,
    )
    total = total_periods(cadence)
    if total is not None and total > MAX_PERIODS:
        raise ValueError(f"until: that makes {total} periods; the limit is {MAX_PERIODS}")
    db.session.add(cadence)
    db.session.flush()
    note(goal, "cadence_created", actor=actor, cadence_id=cadence.id, playbook=playbook.key)
    db.session.commit()
    return cadence


def _refuse_duplicate(
    goal: Goal, parent: MicroJob | None, title: str, playbook: str, every: int, unit: str,
    starts_on: date,
) -> None:  # fmt: skip
    """An active cadence of the same series would build every period twice: refuse it."""
    twin = db.session.scalar(
        select(Cadence.id).where(
            Cadence.goal_id == goal.id,
            Cadence.parent_id == parent.id if parent is not None else Cadence.parent_id.is_(None),
            Cadence.title == title,
            Cadence.playbook == playbook,
            Cadence.every == every,
            Cadence.unit == unit,
            Cadence.starts_on == starts_on,
            Cadence.active.is_(True),
        )
    )
    if twin is not None:
        raise ValueError(f"title: “{title}” already repeats on this goal from that date")


def stop_cadence(cadence: Cadence, *, actor: str = "owner") -> None:
    """No more instances; the ones already built stay."""
    cadence.active = False
    goal = db.session.get(Goal, cadence.goal_id)
    note(goal, "cadence_stopped", actor=actor, cadence_id=cadence.id)
    db.session.commit()


def delete_cadence(cadence: Cadence, *, actor: str = "owner") -> None:
    """Forget the cadence (its instances stay as ordinary jobs)."""
    goal = db.session.get(Goal, cadence.goal_id)
    note(goal, "cadence_deleted", actor=actor, cadence_id=cadence.id, title=cadence.title)
    db.session.delete(cadence)
    db.session.commit()


def instance_title(cadence: Cadence, index: int) -> str:
    start = period_start(cadence, index)
    total = total_periods(cadence)
    of = f" of {total}" if total is not None else ""
    return f"{cadence.title} {index + 1}{of} ({start:%d %b %Y})"


def _build_instance(
    cadence: Cadence, index: int, channels: Iterable[str] | None
) -> MicroJob | None:
    """Build period `index` in its own transaction; None if someone else already built it."""
    goal = db.session.get(Goal, cadence.goal_id)
    parent = db.session.get(MicroJob, cadence.parent_id) if cadence.parent_id else None
    if cadence.parent_id and parent is None:
        _give_up(cadence, "its parent job was deleted")
        return None
    try:
        playbook = from_definition(
            cadence.definition, f"cadence {cadence.id}", key=cadence.playbook
        )
        specs, _ = expand(playbook, parse_params(playbook, cadence.params), channels)
    except PlaybookError as exc:
        _give_up(cadence, str(exc))
        return None
    run = CadenceRun(cadence_id=cadence.id, period=index)
    db.session.add(run)
    try:
        db.session.flush()  # the unique (cadence_id, period) decides who builds this period
    except IntegrityError:
        db.session.rollback()
        return None
    due = period_end(cadence, index)
    existing = _instance_built_before(cadence, index, goal.id)
    if existing is None:
        container = tree.add_job(
            goal, title=instance_title(cadence, index), parent=parent, actor="scheduler",
            commit=False, due_date=due,
        )  # fmt: skip
        created = create_subtree(goal, container, specs, actor="scheduler")
        for job in created:
            job.due_date = job.due_date or due
        kind, jobs = "cadence_instance_created", len(created) + 1
    else:
        container, kind, jobs = existing, "cadence_instance_adopted", 0
    run.job_id = container.id
    cadence.last_period = max(index, cadence.last_period if cadence.last_period is not None else -1)
    total = total_periods(cadence)
    if total is not None and index >= total - 1:
        cadence.active = False
    note(container, kind, actor="scheduler", cadence_id=cadence.id, period=index, jobs=jobs)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return None if existing is not None else container


def _instance_built_before(cadence: Cadence, index: int, goal_id: int) -> MicroJob | None:
    """The instance of this period that an earlier cadence of the same series (same title,
    place and dates, since deleted or stopped and set up again) already built, if any."""
    same_parent = (
        MicroJob.parent_id.is_(None)
        if cadence.parent_id is None
        else MicroJob.parent_id == cadence.parent_id
    )
    candidates = db.session.scalars(
        select(MicroJob).where(
            MicroJob.goal_id == goal_id,
            same_parent,
            MicroJob.due_date == period_end(cadence, index),
        )
    )
    prefix = f"{cadence.title} {index + 1}"
    suffix = f"({period_start(cadence, index):%d %b %Y})"
    for job in candidates:
        if job.title.startswith(prefix) and job.title.endswith(suffix):
            return job
    return None


def _give_up(cadence: Cadence, reason: str) -> None:
    """Stop a cadence that can no longer build its instances, and say why in the goal's log."""
    cadence.active = False
    goal = db.session.get(Goal, cadence.goal_id)
    note(goal, "cadence_failed", actor="scheduler", cadence_id=cadence.id, reason=reason)
    db.session.commit()


def first_to_build(cadence: Cadence, started: int) -> int:
    """The first period a run may build: after the last one built, or on the first run only
    the current period (a cadence that started a year back does not owe 52 overdue ones)."""
    if cadence.last_period is not None:
        return cadence.last_period + 1
    return max(started - 1, 0)


def run_due_cadences(
    now: datetime, *, cadence_ids: Iterable[int] | None = None,
    channels: Iterable[str] | None = None,
) -> int:  # fmt: skip
    """Build every period that has started and has no instance yet; returns how many were built.

    Safe to run as often as you like, and from several processes at once.
    """
    query = (
        select(Cadence.id, Owner.timezone)
        .join(Owner, Owner.id == Cadence.owner_id)
        .where(Cadence.active.is_(True))
        .order_by(Cadence.id)
    )
    if cadence_ids is not None:
        query = query.where(Cadence.id.in_(list(cadence_ids)))
    targets = db.session.execute(query).all()
    channels = list(channels) if channels is not None else None
    built = 0
    for cadence_id, timezone in targets:
        cadence = db.session.get(Cadence, cadence_id)
        if cadence is None or not cadence.active:
            continue
        started = periods_started(cadence, local_today(timezone, now))
        done = set(
            db.session.scalars(select(CadenceRun.period).where(CadenceRun.cadence_id == cadence_id))
        )
        for index in range(first_to_build(cadence, started), started):
            if index in done:
                continue
            if _build_instance(cadence, index, channels) is not None:
                built += 1
            cadence = db.session.get(Cadence, cadence_id)
            if cadence is None or (not cadence.active and index < started - 1):
                break
    return built


@dataclass
class PeriodRow:
    index: int
    start: date
    end: date
    job: MicroJob | None = None
    planned: int = 0  # leaf jobs in the instance (cancelled ones left out)
    done: int = 0
    built: bool = False
    skipped: bool = False  # before the cadence's first run: never to be built

    @property
    def state(self) -> str:
        if self.skipped:
            return "skipped"
        if not self.built:
            return "upcoming"
        if self.job is None:
            return "deleted"
        if self.planned and self.done >= self.planned:
            return "done"
        return "open"


@dataclass
class CadenceReport:
    cadence: Cadence
    rows: list[PeriodRow] = field(default_factory=list)
    total: int | None = None
    started: int = 0

    @property
    def periods_done(self) -> int:
        return sum(1 for r in self.rows if r.state == "done")

    @property
    def planned(self) -> int:
        return sum(r.planned for r in self.rows)

    @property
    def done(self) -> int:
        return sum(r.done for r in self.rows)

    @property
    def next_start(self) -> date | None:
        if not self.cadence.active:
            return None
        if self.total is not None and self.started >= self.total:
            return None
        return period_start(self.cadence, self.started)


def cadence_report(goal: Goal, *, now: datetime | None = None) -> list[CadenceReport]:
    """Planned vs done per period for every cadence of the goal (three queries in all)."""
    from dispatcher.models._base import utcnow

    now = now or utcnow()
    owner = db.session.get(Owner, goal.owner_id)
    today = local_today(owner.timezone if owner else None, now)
    cadences = db.session.scalars(
        select(Cadence).where(Cadence.goal_id == goal.id).order_by(Cadence.id)
    ).all()
    if not cadences:
        return []
    runs = db.session.scalars(
        select(CadenceRun).where(CadenceRun.cadence_id.in_([c.id for c in cadences]))
    ).all()
    jobs = db.session.scalars(select(MicroJob).where(MicroJob.goal_id == goal.id)).all()
    by_id = {j.id: j for j in jobs}
    children: dict[int | None, list[MicroJob]] = defaultdict(list)
    for job in jobs:
        children[job.parent_id].append(job)

    def leaf_counts(root: MicroJob) -> tuple[int, int]:
        planned = done = 0
        stack = [root]
        while stack:
            node = stack.pop()
            kids = children.get(node.id)
            if kids:
                stack.extend(kids)
            elif node.status != Status.CANCELLED:
                planned += 1
                done += int(node.status in lifecycle.COMPLETE)
        return planned, done

    runs_by_cadence: dict[int, dict[int, CadenceRun]] = defaultdict(dict)
    for run in runs:
        runs_by_cadence[run.cadence_id][run.period] = run
    reports = []
    for cadence in cadences:
        report = CadenceReport(
            cadence=cadence,
            total=total_periods(cadence),
            started=periods_started(cadence, today),
        )
        built = runs_by_cadence[cadence.id]
        last = max([report.started - 1, *built])
        for index in range(last + 1):
            row = PeriodRow(index, period_start(cadence, index), period_end(cadence, index))
            run = built.get(index)
            row.skipped = run is None and bool(built) and index < min(built)
            if run is not None:
                row.built = True
                row.job = by_id.get(run.job_id) if run.job_id else None
                if row.job is not None:
                    row.planned, row.done = leaf_counts(row.job)
            report.rows.append(row)
        reports.append(report)
    return reports
