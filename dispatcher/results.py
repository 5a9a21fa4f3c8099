"""Results, not hours: the goal's metric against its target, rollups, channel figures, burn-up,
and the busy-work check.

Plain functions returning small dataclasses, so the pages, the digest and the JSON API show
the same numbers. Nothing here changes state except `log_metric`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dispatcher import lifecycle
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import Status
from dispatcher.models import Event, Goal, MetricValue, MicroJob
from dispatcher.planning import tree
from dispatcher.planning.tree import Progress
from dispatcher.scoping import owned

NOTE_MAX = 500


# --- the result metric -------------------------------------------------------------------


@dataclass(frozen=True)
class MetricPoint:
    on: date
    value: float
    note: str = ""


@dataclass
class MetricSeries:
    """The goal's metric readings with what they are measured against."""

    metric_name: str
    baseline: float | None
    target: float | None
    start: date
    deadline: date | None
    points: list[MetricPoint] = field(default_factory=list)

    @property
    def latest(self) -> MetricPoint | None:
        return self.points[-1] if self.points else None

    @property
    def percent_of_target(self) -> int | None:
        """How far the latest reading is from baseline to target, in percent."""
        if self.latest is None or self.target is None:
            return None
        base = self.baseline or 0.0
        if self.target == base:
            return 100 if self.latest.value >= self.target else 0
        return round(100 * (self.latest.value - base) / (self.target - base))

    def expected_on(self, day: date) -> float | None:
        """Where a straight line from baseline (at the start) to target (at the deadline)
        stands on `day`: the pace the goal needs."""
        if self.target is None or self.deadline is None or self.deadline <= self.start:
            return None
        base = self.baseline or 0.0
        span = (self.deadline - self.start).days
        elapsed = min(max((day - self.start).days, 0), span)
        return base + (self.target - base) * elapsed / span

    @property
    def on_track(self) -> bool | None:
        """Is the latest reading at or past the pace line? (Targets below baseline count down.)"""
        if self.latest is None:
            return None
        expected = self.expected_on(self.latest.on)
        if expected is None:
            return None
        going_up = (self.target or 0.0) >= (self.baseline or 0.0)
        return self.latest.value >= expected if going_up else self.latest.value <= expected


def metric_series(goal: Goal, tz: ZoneInfo) -> MetricSeries:
    values = db.session.scalars(
        select(MetricValue)
        .where(MetricValue.goal_id == goal.id)
        .order_by(MetricValue.on, MetricValue.id)
    ).all()
    points = [MetricPoint(v.on, v.value, v.note or "") for v in values]
    created = goal.created_at.astimezone(tz).date()
    return MetricSeries(
        metric_name=goal.metric_name or "",
        baseline=goal.baseline,
        target=goal.target,
        # Readings logged from before the goal was entered here move its start back.
        start=min([created, *(p.on for p in points[:1])]),
        deadline=goal.deadline,
        points=points,
    )


def log_metric(
    goal: Goal, *, on: date, value: float, note_text: str = "", today: date, actor: str = "owner"
) -> MetricValue:
    """Record one reading of the goal's metric; raises ValueError with a message for the owner."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("the value must be a finite number")
    if on > today:
        raise ValueError(f"{on.isoformat()} is in the future: log results once they happen")
    note_text = (note_text or "").strip()
    if len(note_text) > NOTE_MAX:
        raise ValueError(f"keep the note under {NOTE_MAX} characters")
    reading = MetricValue(goal_id=goal.id, on=on, value=float(value), note=note_text)
    db.session.add(reading)
    note(goal, "metric_logged", actor=actor, on=on.isoformat(), value=float(value))
    db.session.commit()
    return reading


# --- rollups and envelopes ---------------------------------------------------------------


@dataclass
class NodeRollup:
    """One node's progress and money: its subtree's leaves, and its own envelope if it has one."""

    job_id: int
    title: str
    depth: int
    status: Status
    summary: lifecycle.Summary | None
    progress: Progress
    budget_cents: int | None
    reserved_cents: int
    spent_cents: int

    @property
    def available_cents(self) -> int | None:
        if self.budget_cents is None:
            return None
        return self.budget_cents - self.reserved_cents - self.spent_cents


@dataclass
class GoalRollup:
    progress: Progress
    budget_cents: int
    reserved_cents: int
    spent_cents: int
    currency: str
    nodes: list[NodeRollup] = field(default_factory=list)  # top-level nodes
    envelopes: list[NodeRollup] = field(default_factory=list)  # every node with its own budget

    @property
    def available_cents(self) -> int:
        return self.budget_cents - self.reserved_cents - self.spent_cents


def _node_rollup(node: tree.TreeNode) -> NodeRollup:
    job = node.job
    return NodeRollup(
        job_id=job.id,
        title=job.title,
        depth=node.depth,
        status=node.status,
        summary=node.summary,
        progress=node.progress,
        budget_cents=job.budget_cents,
        # The node's own columns: the ones the envelope check in budget.reserve reads.
        reserved_cents=job.reserved_cents,
        spent_cents=job.spent_cents,
    )


def rollup(goal: Goal) -> GoalRollup:
    """Progress (by count and by estimate) and money for the goal and each top-level node."""
    nodes = tree.goal_tree(goal)
    total = Progress()
    for node in nodes:
        total.add(node.progress)
    return GoalRollup(
        progress=total,
        budget_cents=goal.budget_cents,
        reserved_cents=goal.reserved_cents,
        spent_cents=goal.spent_cents,
        currency=goal.currency,
        nodes=[_node_rollup(n) for n in nodes],
        envelopes=[_node_rollup(n) for n in tree.walk(nodes) if n.job.budget_cents is not None],
    )


# --- channels: turnaround and acceptance ------------------------------------------------

_CHANNEL_KINDS = (
    "queue", "requeue", "dispatched", "delivered", "accept", "delivery_accepted", "reject",
    "request_revision", "fail", "expire", "cancel",
)  # fmt: skip


@dataclass
class ChannelStats:
    """How a channel performs, from the Event log: each dispatch is one cycle."""

    channel: str
    dispatched: int = 0
    delivered: int = 0
    accepted: int = 0
    rejected: int = 0
    revisions: int = 0
    to_delivery: list[timedelta] = field(default_factory=list)
    to_acceptance: list[timedelta] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted deliveries over decided ones (accepted + rejected); None before any."""
        decided = self.accepted + self.rejected
        return self.accepted / decided if decided else None

    @property
    def avg_to_delivery(self) -> timedelta | None:
        return _mean(self.to_delivery)

    @property
    def avg_to_acceptance(self) -> timedelta | None:
        return _mean(self.to_acceptance)


def _mean(spans: list[timedelta]) -> timedelta | None:
    return sum(spans, timedelta()) / len(spans) if spans else None


def channel_stats(owner_id: int, goal_id: int | None = None) -> list[ChannelStats]:
    """Average turnaround (dispatched -> first delivery, dispatched -> accepted) and
    acceptance rate per channel, for the owner's jobs (or one goal's)."""
    jobs = owned(MicroJob, owner_id).with_only_columns(MicroJob.id, MicroJob.channel)
    if goal_id is not None:
        jobs = jobs.where(MicroJob.goal_id == goal_id)
    jobs = jobs.subquery()
    rows = db.session.execute(
        select(Event.job_id, jobs.c.channel, Event.kind, Event.data, Event.created_at)
        .join(jobs, jobs.c.id == Event.job_id)
        .where(Event.kind.in_(_CHANNEL_KINDS))
        .order_by(Event.job_id, Event.created_at, Event.id)
    )
    stats: dict[str, ChannelStats] = {}
    state: dict[int, dict] = defaultdict(dict)
    for job_id, job_channel, kind, data, at in rows:
        cycle = state[job_id]
        if kind in ("queue", "requeue"):
            cycle.clear()
            cycle["channel"] = (data or {}).get("channel") or job_channel
            continue
        channel = cycle.get("channel") or job_channel
        if not channel:
            continue
        s = stats.setdefault(channel, ChannelStats(channel))
        _count(s, cycle, kind, at)
    return sorted(stats.values(), key=lambda s: s.channel)


def _count(s: ChannelStats, cycle: dict, kind: str, at: datetime) -> None:
    start = cycle.get("start")
    if kind == "dispatched":
        if start is None:
            cycle.update(start=at, delivered=False)
            s.dispatched += 1
    elif kind == "delivered":
        s.delivered += 1
        if start is not None and not cycle.get("delivered"):
            cycle["delivered"] = True
            s.to_delivery.append(at - start)
    elif kind in ("accept", "delivery_accepted"):
        s.accepted += 1
        if kind == "accept" and start is not None:
            s.to_acceptance.append(at - start)
            cycle.pop("start", None)
    elif kind == "reject":
        s.rejected += 1
        cycle.pop("start", None)
    elif kind == "request_revision":
        s.revisions += 1
    else:  # fail, expire, cancel: the cycle ends without a result
        cycle.pop("start", None)


# --- burn-up -----------------------------------------------------------------------------


@dataclass
class BurnUp:
    """Finished jobs (cumulative) against the scope (jobs that exist) per day."""

    days: list[date]
    done: list[int]
    scope: list[int]


def burnup(goal: Goal, today: date, tz: ZoneInfo, *, max_points: int = 120) -> BurnUp:
    """One point per day from the day before the goal's start to `today` (fewer, evenly spaced
    points when that is more than `max_points` days)."""
    leaves = [j for j in tree.leaves_of(goal) if j.status != Status.CANCELLED]
    start = goal.created_at.astimezone(tz).date()
    created = sorted(j.created_at.astimezone(tz).date() for j in leaves)
    finished = sorted(
        (j.finished_at or j.updated_at).astimezone(tz).date()
        for j in leaves
        if j.status in lifecycle.COMPLETE
    )
    # From the day before anything existed, so even a one-day-old goal draws a rising line.
    first = min([start, *created[:1], *finished[:1]]) - timedelta(days=1)
    span = max((today - first).days, 0)
    step = max(1, math.ceil((span + 1) / max_points))
    days = [first + timedelta(days=n) for n in range(0, span + 1, step)]
    if not days or days[-1] != today:
        days.append(today)
    return BurnUp(
        days=days,
        done=[_count_until(finished, d) for d in days],
        scope=[_count_until(created, d) for d in days],
    )


def _count_until(sorted_days: list[date], day: date) -> int:
    return bisect_right(sorted_days, day)


# --- busy work ---------------------------------------------------------------------------


@dataclass
class BusyWork:
    """What the busy-work check flags: work not tied to a measurable result."""

    goal_problems: list[str]
    jobs_without_criteria: list[MicroJob]

    @property
    def clean(self) -> bool:
        return not self.goal_problems and not self.jobs_without_criteria


def goal_problems(goal: Goal) -> list[str]:
    """Why the goal has no measurable target (empty when it has one)."""
    problems = []
    if not (goal.metric_name or "").strip():
        problems.append("no result metric: name what you will measure")
    if goal.target is None:
        problems.append("no target value: say what number means done")
    return problems


def has_criteria(job: MicroJob) -> bool:
    return any(str(c).strip() for c in job.acceptance_criteria or [])


def busy_work(goal: Goal) -> BusyWork:
    """Flag the goal if it has no measurable target, and its open or finished leaves that have
    no acceptance criteria (nobody can tell when they are done well)."""
    jobs = [j for j in tree.leaves_of(goal) if j.status != Status.CANCELLED and not has_criteria(j)]
    return BusyWork(goal_problems=goal_problems(goal), jobs_without_criteria=jobs)


def unmeasurable_goals(owner_id: int) -> list[tuple[Goal, list[str]]]:
    """The owner's goals that fail the measurable-target check, with the reasons."""
    goals = db.session.scalars(owned(Goal, owner_id).order_by(Goal.id)).all()
    return [(g, p) for g in goals if (p := goal_problems(g))]
