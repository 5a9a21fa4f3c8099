"""Each person's scorecard, computed from the assignments that name them (never stored, so
it cannot drift from the work): jobs given, on-time rate, acceptance on first submission,
revisions per delivered job, average turnaround, average rating and money paid.

`scorecards` answers for many people in three queries whatever their number (the directory
page and the API list); `scorecard` is the same for one person.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select, true

from dispatcher.extensions import db
from dispatcher.models import Assignment, Delivery, Dispatch, Goal, MicroJob, Person, Review


@dataclass
class Scorecard:
    """One person's figures; a rate or an average is None until there is something to
    measure (no delivery yet, no due date, no rating)."""

    person_id: int
    jobs_given: int = 0
    delivered: int = 0  # assignments with at least one delivery
    on_time_rate: float | None = None  # delivered by the job's due date / delivered with one
    first_pass_rate: float | None = None  # first submission accepted / first submissions decided
    revisions_per_job: float | None = None  # revision requests / delivered assignments
    average_turnaround: timedelta | None = None  # order placed -> first delivery
    average_rating: float | None = None
    paid_cents: int = 0
    _ratings: list[int] = field(default_factory=list, repr=False)


@dataclass
class _Place:
    id: int
    person_id: int
    job_id: int
    paid_cents: int
    placed_at: datetime | None
    due_date: date | None
    first: tuple[datetime, int] | None = None  # (received_at, delivery id) of its first delivery


def scorecard(person: Person) -> Scorecard:
    return scorecards(person.owner_id, [person.id])[person.id]


def scorecards(
    owner_id: int, person_ids: Iterable[int], *, goal_id: int | None = None
) -> dict[int, Scorecard]:
    """The scorecards of these people of the owner's, in three queries (`goal_id`: counting
    only that goal's work, for its results page)."""
    ids = list(person_ids)
    cards = {pid: Scorecard(pid) for pid in ids}
    if not ids:
        return cards
    rows = db.session.execute(
        select(
            Assignment.id,
            Assignment.person_id,
            Assignment.job_id,
            Assignment.paid_cents,
            Dispatch.placed_at,
            MicroJob.due_date,
        )
        .join(Dispatch, Assignment.dispatch_id == Dispatch.id)
        .join(MicroJob, Assignment.job_id == MicroJob.id)
        .where(Assignment.person_id.in_(ids), MicroJob.owner_id == owner_id)
        .where(MicroJob.goal_id == goal_id if goal_id is not None else true())
    ).all()
    places = {r.id: _Place(*r) for r in rows}
    if not places:
        return cards
    deliveries = db.session.execute(
        select(Delivery.id, Delivery.assignment_id, Delivery.received_at).where(
            Delivery.assignment_id.in_(list(places))
        )
    ).all()
    place_of: dict[int, int] = {}
    for delivery_id, place_id, received in deliveries:
        place_of[delivery_id] = place_id
        place = places[place_id]
        if place.first is None or (received, delivery_id) < place.first:
            place.first = (received, delivery_id)
    reviews = db.session.execute(
        select(Review.delivery_id, Review.decision, Review.rating)
        .join(Delivery, Review.delivery_id == Delivery.id)
        .where(Delivery.assignment_id.in_(list(places)))
        .order_by(Review.id)
    ).all()
    _fill(cards, places, place_of, reviews)
    return cards


def _fill(cards, places, place_of, reviews) -> None:
    by_person: dict[int, list[_Place]] = defaultdict(list)
    for place in places.values():
        by_person[place.person_id].append(place)
    first_decision: dict[int, str] = {}  # delivery id -> its first decision
    revisions: dict[int, int] = defaultdict(int)  # person id -> revision requests
    for delivery_id, decision, rating in reviews:
        first_decision.setdefault(delivery_id, decision)
        person_id = places[place_of[delivery_id]].person_id
        if decision == "revise":
            revisions[person_id] += 1
        if rating is not None:
            cards[person_id]._ratings.append(rating)
    for person_id, own in by_person.items():
        card = cards[person_id]
        card.jobs_given = len({p.job_id for p in own})
        card.paid_cents = sum(p.paid_cents for p in own)
        delivered = [p for p in own if p.first is not None]
        card.delivered = len(delivered)
        dated = [p for p in delivered if p.due_date is not None]
        card.on_time_rate = _ratio(
            sum(1 for p in dated if p.first[0].date() <= p.due_date), len(dated)
        )
        decided = [first_decision[p.first[1]] for p in delivered if p.first[1] in first_decision]
        card.first_pass_rate = _ratio(decided.count("accept"), len(decided))
        card.revisions_per_job = _ratio(revisions[person_id], len(delivered))
        waits = [p.first[0] - p.placed_at for p in delivered if p.placed_at is not None]
        card.average_turnaround = sum(waits, timedelta()) / len(waits) if waits else None
        if card._ratings:
            card.average_rating = sum(card._ratings) / len(card._ratings)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def goal_people(goal: Goal) -> list[tuple[Person, Scorecard]]:
    """The people who were given work under the goal, by name, with their figures for it."""
    people = list(
        db.session.scalars(
            select(Person)
            .where(
                Person.owner_id == goal.owner_id,
                Person.id.in_(
                    select(Assignment.person_id)
                    .join(MicroJob, Assignment.job_id == MicroJob.id)
                    .where(MicroJob.goal_id == goal.id)
                ),
            )
            .order_by(Person.name, Person.id)
        )
    )
    cards = scorecards(goal.owner_id, [p.id for p in people], goal_id=goal.id)
    return [(p, cards[p.id]) for p in people]


def job_person_names(goal: Goal) -> dict[int, str]:
    """job id -> the name of the person it goes to, for the goal's jobs that name one."""
    rows = db.session.execute(
        select(MicroJob.id, Person.name)
        .join(Person, MicroJob.person_id == Person.id)
        .where(MicroJob.goal_id == goal.id, Person.owner_id == goal.owner_id)
    )
    return {job_id: name for job_id, name in rows}
