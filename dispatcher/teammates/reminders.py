"""Reminders before the due date: once per assignment, REMINDER_DAYS_BEFORE days ahead,
through the outbox (key ``reminder-<assignment id>``: the unique key is what makes it once,
however often or on however many hosts this runs)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dispatcher.dispatch.channels import registry
from dispatcher.extensions import db
from dispatcher.lifecycle import AssignmentState, DispatchState
from dispatcher.models import Assignment, Dispatch, MicroJob, OutboxMessage
from dispatcher.models._base import utcnow
from dispatcher.queues import SLOW
from dispatcher.teammates import notices, outbox

#: places still waiting for the person's work
WAITING = (AssignmentState.OPEN, AssignmentState.TAKEN, AssignmentState.REVISION_REQUESTED)


def key_for(assignment_id: int) -> str:
    return f"reminder-{assignment_id}"


def due_places() -> list[Assignment]:
    """Teammates' places whose job is due within the window and not reminded yet."""
    from flask import current_app

    days = current_app.config["SETTINGS"].reminder_days_before
    if days <= 0:
        return []
    teammate = [n for n, cls in registry().classes().items() if cls.teammate]
    today = utcnow().date()
    reminded = select(OutboxMessage.assignment_id).where(OutboxMessage.kind == "reminder")
    return list(
        db.session.scalars(
            select(Assignment)
            .join(Dispatch, Assignment.dispatch_id == Dispatch.id)
            .join(MicroJob, Assignment.job_id == MicroJob.id)
            .where(
                Dispatch.adapter.in_(teammate),
                Dispatch.state == DispatchState.PLACED,
                Assignment.status.in_([str(s) for s in WAITING]),
                Assignment.person_id.is_not(None),
                MicroJob.due_date.is_not(None),
                MicroJob.due_date >= today,
                MicroJob.due_date <= today + timedelta(days=days),
                Assignment.id.not_in(reminded),
            )
            .order_by(Assignment.id)
        )
    )


def send_reminders() -> int:
    """Stage one reminder per due place (each in its own commit); returns how many."""
    staged = 0
    for place in due_places():
        job = db.session.get(MicroJob, place.job_id)
        subject, text = notices.reminder(job)
        try:
            outbox.stage(place, "reminder", subject, text, key=key_for(place.id), with_link=True)
            db.session.commit()
            staged += 1
        except IntegrityError:  # another run staged it first
            db.session.rollback()
    return staged


PERIODIC_JOBS = [(send_reminders, 3600, SLOW)]
