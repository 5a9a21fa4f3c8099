"""Today: the owner's daily to-do list, in the owner's own time zone.

What the owner does today (kept jobs planned or due today, on work and personal goals alike),
what slipped, what is out with others, and what waits for their review. The page and the daily
digest both read `today_view`, so they always say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload

from dispatcher import lifecycle
from dispatcher.dispatch.review import awaiting_review
from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Delivery, Event, MicroJob, Owner, Person
from dispatcher.planning import tree
from dispatcher.scoping import owned
from dispatcher.timezones import zone

#: Statuses of a kept job that still needs doing.
TO_DO = frozenset({Status.DRAFT, Status.READY, Status.IN_PROGRESS})
#: Delegated jobs the owner follows on Today: out with someone, or stuck and needing a decision.
FOLLOWED = lifecycle.OUT | {Status.FAILED, Status.EXPIRED}


def local_now(owner: Owner, now: datetime | None = None) -> datetime:
    """`now` (aware; default: the current time) in the owner's time zone."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("give an aware datetime")
    return now.astimezone(zone(owner.timezone))


def local_today(owner: Owner, now: datetime | None = None) -> date:
    """The owner's calendar day at `now`: what "today" means on their Today page."""
    return local_now(owner, now).date()


@dataclass
class TodayView:
    """Everything on the Today page and in the digest, for one owner and one day."""

    today: date
    planned: list[MicroJob] = field(default_factory=list)
    overdue: list[MicroJob] = field(default_factory=list)
    done_today: list[MicroJob] = field(default_factory=list)
    out: list[MicroJob] = field(default_factory=list)
    review: list[Delivery] = field(default_factory=list)
    #: what each job out with others waits for, and since when (by job id)
    waiting: dict[int, str] = field(default_factory=dict)
    #: teammates' questions still waiting for the owner's answer (Events on their jobs)
    questions: list[Event] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.planned or self.overdue or self.out or self.review or self.done_today
            or self.questions
        )  # fmt: skip


def _leaves(owner_id: int):
    """Owned jobs that have no children: only leaves carry work."""
    parents = select(MicroJob.parent_id).where(
        MicroJob.owner_id == owner_id, MicroJob.parent_id.is_not(None)
    )
    return (
        owned(MicroJob, owner_id)
        .where(MicroJob.id.not_in(parents))
        .options(joinedload(MicroJob.goal))
    )


def _mine():
    """Jobs the owner does: kept, or not yet decided (nobody else will do those)."""
    return MicroJob.mode != "delegate"


def today_view(owner: Owner, today: date) -> TodayView:
    """Build the Today lists for `owner` on their local day `today` (a few queries)."""
    view = TodayView(today=today)
    open_mine = db.session.scalars(
        _leaves(owner.id).where(
            _mine(),
            MicroJob.status.in_(tuple(TO_DO)),
            or_(MicroJob.planned_for <= today, MicroJob.due_date <= today),
        )
    ).all()
    for job in open_mine:
        if is_overdue(job, today):
            view.overdue.append(job)
        else:
            view.planned.append(job)
    view.overdue.sort(key=lambda j: (j.due_date or j.planned_for or today, j.id))
    view.planned.sort(key=lambda j: (j.status != Status.IN_PROGRESS, j.goal_id, j.position, j.id))

    start, end = _day_bounds(owner, today)
    view.done_today = list(
        db.session.scalars(
            _leaves(owner.id)
            .where(
                _mine(),
                MicroJob.status.in_(tuple(lifecycle.COMPLETE)),
                MicroJob.finished_at >= start,
                MicroJob.finished_at < end,
            )
            .order_by(MicroJob.finished_at)
        )
    )
    view.out = list(
        db.session.scalars(
            _leaves(owner.id)
            .where(MicroJob.mode == "delegate", MicroJob.status.in_(tuple(FOLLOWED)))
            .order_by(MicroJob.due_date.is_(None), MicroJob.due_date, MicroJob.updated_at)
        )
    )
    view.review = awaiting_review(owner.id)
    view.waiting = waiting_for(view.out, owner)

    from dispatcher.teammates.questions import open_for_owner

    view.questions = open_for_owner(owner.id)
    return view


def is_overdue(job: MicroJob, today: date) -> bool:
    """Past its due date, or planned for a day that has gone by without it being done."""
    if job.due_date is not None and job.due_date < today:
        return True
    return job.planned_for is not None and job.planned_for < today and job.due_date != today


def overdue_reason(job: MicroJob, today: date) -> str:
    if job.due_date is not None and job.due_date < today:
        return f"due {job.due_date.isoformat()}"
    if job.planned_for is not None:
        return f"planned for {job.planned_for.isoformat()}"
    return ""


def _day_bounds(owner: Owner, day: date) -> tuple[datetime, datetime]:
    """The owner's local day as a UTC [start, end) range."""
    tz = zone(owner.timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = start + timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


def _check_mine(job: MicroJob, action: str) -> None:
    if job.children:
        raise InvalidTransition(job.id, job.status, action, ["act on its smaller jobs instead"])
    if job.mode == "delegate":
        raise InvalidTransition(
            job.id, job.status, action, ["it is delegated: review what comes back instead"]
        )


def check_off(job: MicroJob, *, actor: str = "owner") -> Status:
    """Mark one of the owner's own jobs done (through the lifecycle, which writes the Event)."""
    _check_mine(job, "complete")
    return tree.act(job, "complete", actor=actor)


def plan_for(job: MicroJob, day: date | None, *, actor: str = "owner") -> MicroJob:
    """Put a job on the to-do list of `day` (None takes it off every day's list)."""
    _check_mine(job, "plan")
    if job.status not in TO_DO:
        raise InvalidTransition(job.id, job.status, "plan", ["only open jobs can be planned"])
    return tree.update_job(job, planned_for=day, actor=actor)


def push_to_tomorrow(job: MicroJob, today: date, *, actor: str = "owner") -> MicroJob:
    """Move a job to the day after the owner's `today`."""
    return plan_for(job, today + timedelta(days=1), actor=actor)


# --- what a delegated job waits for ------------------------------------------------------------

#: What a job out with others waits for, by status: (with a named person, without one).
WAITING_FOR: dict[str, tuple[str, str]] = {
    Status.QUEUED: ("to be sent to {name}", "to be sent to {channel}"),
    Status.DISPATCHED: ("for {name} to take it", "for a worker to take it"),
    Status.TAKEN: ("for {name}’s submission", "for the worker’s submission"),
    Status.REVISION_REQUESTED: ("for {name}’s revised work", "for the revised work"),
}


def waiting_for(
    jobs: Iterable[MicroJob], owner: Owner, now: datetime | None = None
) -> dict[int, str]:
    """ "waiting for a worker to take it since 14:02" for each job in `jobs` (leaves: a
    parent waits on nothing itself) that is out with a channel, by job id: the one wording of
    the job row, the goal page and Today.

    "Since" is when the job entered its status (its latest Event into it); two queries for
    any number of jobs, none when no job waits.
    """
    out = [job for job in jobs if job.status in WAITING_FOR]
    if not out:
        return {}
    since = _entered(out)
    names = _person_names({job.person_id for job in out if job.person_id is not None})
    texts = {}
    for job in out:
        named, anonymous = WAITING_FOR[job.status]
        name = names.get(job.person_id) if job.person_id is not None else None
        what = (named if name else anonymous).format(
            name=name, channel=job.channel or "its channel"
        )
        moment = since.get((job.id, job.status)) or job.updated_at
        texts[job.id] = f"waiting {what} since {since_text(moment, owner, now)}"
    return texts


def since_text(moment: datetime, owner: Owner, now: datetime | None = None) -> str:
    """A past moment as short as the owner reads it: "14:02" today, "Mon" this week,
    "3 Mar" this year, else "3 Mar 2025" (in the owner's time zone)."""
    here = local_now(owner, now)
    then = moment.astimezone(here.tzinfo)
    if then.date() == here.date():
        return then.strftime("%H:%M")
    if (here.date() - then.date()).days < 7:
        return then.strftime("%a")
    if then.year == here.year:
        return f"{then.day} {then.strftime('%b')}"
    return f"{then.day} {then.strftime('%b %Y')}"


def _entered(jobs: list[MicroJob]) -> dict[tuple[int, str], datetime]:
    """(job id, status) -> when the job last moved into that status."""
    rows = db.session.execute(
        select(Event.job_id, Event.to_status, func.max(Event.created_at))
        .where(
            Event.job_id.in_([job.id for job in jobs]),
            Event.to_status.in_(tuple(WAITING_FOR)),
            Event.kind.not_like("%.%"),  # the job's own moves, not its orders' or places'
        )
        .group_by(Event.job_id, Event.to_status)
    )
    return {(job_id, status): at for job_id, status, at in rows}


def _person_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.session.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))
    return {person_id: name for person_id, name in rows}
