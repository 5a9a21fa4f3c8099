"""Recording pay for a person's accepted work (issue 9, part 7).

A teammate is paid on acceptance when the job has a price (the confirm path spends the
place's held money). What was not paid then (a teammate on no fixed rate, a bonus) the owner
records here: the amount is charged to the job's budget as spent, through the same budget
helpers every other payment uses, so the goal's spend and the person's scorecard include it.

A payment names what the owner saw already paid (`paid_before`): the UPDATE only applies
while that is still true, so a double click, or two tabs, pay once.
"""

from __future__ import annotations

from sqlalchemy import update

from dispatcher.dispatch import budget
from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.lifecycle import AssignmentState
from dispatcher.locking import lock_job
from dispatcher.models import Assignment, MicroJob, Person

#: only accepted work is paid (ACCEPTED: perhaps still "paying" its price; PAID: settled)
PAYABLE = frozenset({AssignmentState.ACCEPTED, AssignmentState.PAID})
MAX_PAYMENT = 1_000_000_000


class PaymentRefused(InvalidTransition):
    """The work is not accepted, or its pay changed since the owner looked (a double click):
    an InvalidTransition, so the page and the API answer it as every refused move (409)."""

    def __init__(self, job_id: int, current: str, reason: str):
        super().__init__(job_id, current, "mark_paid", [reason])
        self.args = (reason,)


def record_payment(
    place: Assignment, amount_cents: int, actor: str, *, paid_before: int
) -> Assignment:
    """Charge `amount_cents` to the job's budget as spent and add it to the place's pay.

    Raises ValueError for a bad amount, PaymentRefused when the work is not accepted,
    PaymentRefused when `paid_before` is no longer what the place was paid, BudgetExceeded
    when an envelope has no room (nothing is changed then)."""
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int):
        raise ValueError("give the amount in whole cents")
    if not 0 < amount_cents <= MAX_PAYMENT:
        raise ValueError("the amount must be more than 0 and at most 10,000,000.00")
    job = lock_job(db.session.get(MicroJob, place.job_id))
    try:
        db.session.refresh(place)
        if place.status not in PAYABLE:
            raise PaymentRefused(
                job.id, job.status,
                f"this work is {place.status.replace('_', ' ')}: only accepted work is paid",
            )  # fmt: skip
        budget.reserve(job, amount_cents)
        budget.spend(job, amount_cents, amount_cents)
        grew = db.session.execute(
            update(Assignment)
            .where(Assignment.id == place.id, Assignment.paid_cents == paid_before)
            .values(paid_cents=Assignment.paid_cents + amount_cents)
            .execution_options(synchronize_session=False)
        ).rowcount
        if grew != 1:
            raise PaymentRefused(
                job.id, job.status,
                "a payment was recorded meanwhile: look at what is paid now, then try again",
            )  # fmt: skip
    except Exception:
        db.session.rollback()
        raise
    db.session.expire(place, ["paid_cents"])
    person = db.session.get(Person, place.person_id) if place.person_id else None
    note(
        job,
        "payment_recorded",
        actor=actor,
        assignment_id=place.id,
        payout_cents=amount_cents,
        person=person.name if person else place.worker_ref,
    )
    db.session.commit()
    return place
