"""Assignments ("places"): each worker's place in an order, with the money it holds.

Everything that moves a place goes through `move`, which applies the assignment machine
(lifecycle/assignment.py) and moves the money with it in the same transaction: a place that
ends unpaid gives its money back, a place that is paid turns what it held into spend (the
worker's pay plus the platform's fee). The job's status is then derived from its places by
`sync_job`, the way a parent's is derived from its leaves.

All of it runs in the caller's transaction, under the job's row lock (dispatcher/locking.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dispatcher import lifecycle
from dispatcher.dispatch import budget
from dispatcher.extensions import db
from dispatcher.lifecycle import ASSIGNMENT, DISPATCH, AssignmentState, DispatchState, Status
from dispatcher.lifecycle.assignment import FINISHED, HOLDING, UNPAID_END
from dispatcher.models import Assignment, Dispatch, MicroJob
from dispatcher.models._base import utcnow

if TYPE_CHECKING:
    from sqlalchemy import ScalarSelect

    from dispatcher.dispatch import request_writes

A = AssignmentState

#: places still waiting for work or for the owner (not yet accepted)
IN_FLIGHT = frozenset({A.OPEN, A.TAKEN, A.SUBMITTED, A.REVISION_REQUESTED})
#: places that count towards what the job asked for
COUNTED = frozenset({A.ACCEPTED, A.PAID})
#: places a new order does not cover again: in flight, accepted or paid
LIVE = IN_FLIGHT | COUNTED


def open_places(
    job: MicroJob,
    dispatch: Dispatch,
    count: int,
    fee_cents: int,
    *,
    move: request_writes.JobMove | None = None,
    order_id: int | None = None,
) -> None:
    """Stage the order, reserve `count` places (price plus fee each) on the budget, then add
    their rows. The job must be locked (`lock_job`) in this transaction: its own reservation
    is then the caller's to write with its status (`request_writes.move_job(...,
    reserved=dispatch.amount_cents)`), one UPDATE of its row, not two. A refused reservation
    leaves no order, so a caller that commits after the refusal stores no order without its
    money. The rows are written with Core statements (request_writes.open_order), which
    then makes the job's `move` (`order_id`: the order's id, if the request read it)."""
    from dispatcher.dispatch import request_writes

    per_place = job.price_cents + fee_cents
    dispatch.amount_cents = count * per_place
    place = {
        "job_id": job.id,
        "status": str(A.OPEN),
        "price_cents": job.price_cents,
        "fee_cents": fee_cents,
        "held_cents": per_place,
        "person_id": job.person_id,  # the named person's place (teammate channels)
    }
    request_writes.open_order(job, dispatch, place, count, move, order_id)


def missing(job: MicroJob, live: int | None = None) -> int:
    """How many places a new order must cover: what the job asks for, less the places that
    are in flight, accepted or paid in any of its orders (`live`: that count, when the
    caller read it already, as `live_count` does)."""
    if live is None:
        live = sum(1 for a in places_of(job) if a.status in LIVE)
    return max(0, job.assignments - live)


def live_count(job_id: Any) -> ScalarSelect[int]:
    """The number of the job's live places, as a scalar subquery (for one-statement reads);
    `job_id` an id or a bound parameter."""
    from sqlalchemy import func, select

    return (
        select(func.count(Assignment.id))
        .where(Assignment.job_id == job_id, Assignment.status.in_(sorted(str(s) for s in LIVE)))
        .scalar_subquery()
    )


def places_of(job: MicroJob) -> list[Assignment]:
    """Every place of every order of the job, oldest first (fresh from the database)."""
    from sqlalchemy import select

    return list(
        db.session.scalars(
            select(Assignment).where(Assignment.job_id == job.id).order_by(Assignment.id)
        )
    )


def move(
    place: Assignment,
    action: str,
    job: MicroJob,
    *,
    actor: str,
    payout_cents: int | None = None,
    data: dict[str, Any] | None = None,
) -> AssignmentState:
    """Move one place and its money together; returns the new state."""
    after = ASSIGNMENT.move(place, action, job=job, actor=actor, data=data)
    if after in UNPAID_END and place.held_cents:
        budget.release(job, place.held_cents)
        place.held_cents = 0
    elif after == A.PAID:
        pay = place.price_cents if payout_cents is None else payout_cents
        budget.spend(job, place.held_cents, pay + place.fee_cents)
        place.held_cents = 0
        place.paid_cents += pay  # a payment recorded before (people.pay) stays
    place.updated_at = utcnow()
    return after


def rehold(place: Assignment, job: MicroJob) -> None:
    """Reserve a finished-unpaid place's money again (the owner accepts its late work);
    raises BudgetExceeded when the budget has no room."""
    amount = place.price_cents + place.fee_cents
    budget.reserve(job, amount)
    place.held_cents = amount


def find_place(
    dispatch: Dispatch, *, ref: str = "", worker: str = "", claim: bool = True
) -> Assignment | None:
    """The place an event is about: by the platform's id for it, else by worker, else (with
    `claim`) the first place nobody holds yet, which then takes that id. None when the order
    has no such place (more workers than places, or everyone's place is finished)."""
    places = list(dispatch.assignments)
    if ref:
        for place in places:
            if place.external_ref == ref:
                return place
    if worker:
        for place in places:
            if place.worker_ref == worker and place.status not in FINISHED:
                return place
    if not places:
        return None
    if len(places) == 1 and not ref:
        return places[0]
    if not claim:
        return None
    for place in places:
        if place.status == A.OPEN and not place.external_ref and not place.worker_ref:
            if ref:
                place.external_ref = ref
            if worker:
                place.worker_ref = worker
            return place
    return None


def close_if_finished(dispatch: Dispatch, job: MicroJob, *, actor: str) -> None:
    """An order whose every place is finished expects nothing more: close it."""
    if dispatch.state != DispatchState.PLACED:
        return
    if all(place.status in FINISHED for place in dispatch.assignments):
        DISPATCH.move(dispatch, "close", job=job, actor=actor)


# -- the job's status, derived --------------------------------------------------------------
def derived_job_status(
    job: MicroJob, places: Iterable[Assignment], orders: list[Dispatch]
) -> Status | None:
    """What a delegated job's status is, given its places and its orders (every one, oldest
    first); None when the places say nothing (no order yet)."""
    places = list(places)
    latest = orders[-1] if orders else None
    if latest is None or not places:
        return None
    states = [p.status for p in places]
    if A.SUBMITTED in states:
        return Status.DELIVERED
    if A.REVISION_REQUESTED in states:
        return Status.REVISION_REQUESTED
    if A.TAKEN in states:
        return Status.TAKEN
    if A.OPEN in states:
        open_orders = {p.dispatch_id for p in places if p.status == A.OPEN}
        placed = any(d.state == DispatchState.PLACED for d in orders if d.id in open_orders)
        return Status.DISPATCHED if placed else Status.QUEUED
    counted = [p for p in places if p.status in COUNTED]
    if len(counted) >= job.assignments:
        return Status.PAID if all(p.status == A.PAID for p in counted) else Status.ACCEPTED
    if latest.state == DispatchState.FAILED:
        return Status.FAILED
    ended = [p.status for p in places if p.dispatch_id == latest.id]
    if A.REJECTED in ended:
        return Status.REJECTED
    if A.EXPIRED in ended or A.RETURNED in ended:
        return Status.EXPIRED
    if counted:  # some accepted, the rest rejected in an earlier order
        return Status.REJECTED
    return Status.CANCELLED


#: the job action that reaches each derived status (from wherever the table allows)
_ACTION_TO = {
    Status.DELIVERED: "delivered",
    Status.REVISION_REQUESTED: "request_revision",
    Status.TAKEN: "taken",
    Status.ACCEPTED: "accept",
    Status.PAID: "pay",
    Status.REJECTED: "reject",
    Status.EXPIRED: "expire",
    Status.FAILED: "fail",
}


#: a job's places and orders, oldest first (what `sync_job` derives its status from)
Standing = tuple[list[Assignment], list[Dispatch]]


def standing(jobs: Iterable[MicroJob]) -> dict[int, Standing]:
    """Every place and order of each job, in two statements for all of them (a batch's
    placements), not two per job; the caller has flushed what they must see."""
    from sqlalchemy import select

    ids = sorted({job.id for job in jobs})
    found: dict[int, Standing] = {i: ([], []) for i in ids}
    for place in db.session.scalars(
        select(Assignment).where(Assignment.job_id.in_(ids)).order_by(Assignment.id)
    ):
        found[place.job_id][0].append(place)
    for order in db.session.scalars(
        select(Dispatch).where(Dispatch.job_id.in_(ids)).order_by(Dispatch.id)
    ):
        found[order.job_id][1].append(order)
    return found


def sync_job(
    job: MicroJob,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    known: Standing | None = None,
) -> None:
    """Move the job to the status its places say, through the job machine (each move
    writes its Event). A cancelled job stays cancelled: that was the owner's word. `known`:
    its places and orders as `standing` read them, instead of reading them here."""
    if job.status in (Status.CANCELLED, Status.DONE):
        return
    if known is None:
        from sqlalchemy import select

        db.session.flush()
        orders = list(
            db.session.scalars(
                select(Dispatch).where(Dispatch.job_id == job.id).order_by(Dispatch.id)
            )
        )
        known = (places_of(job), orders)
    goal = derived_job_status(job, *known)
    if goal is None or goal == job.status:
        return
    if goal == Status.PAID and job.status != Status.ACCEPTED:
        lifecycle.transition(job, "accept", actor=actor, data=data)
    if goal == Status.DISPATCHED:
        action = "dispatched" if job.status == Status.QUEUED else "withdrawn"
    elif goal == Status.QUEUED:
        return  # only ever reached by queueing, never derived
    else:
        action = _ACTION_TO[goal]
    lifecycle.transition(job, action, actor=actor, data=data)
    if goal in (Status.ACCEPTED, Status.PAID) and job.finished_at is None:
        job.finished_at = utcnow()


def holding(places: Iterable[Assignment]) -> list[Assignment]:
    return [p for p in places if p.status in HOLDING]
