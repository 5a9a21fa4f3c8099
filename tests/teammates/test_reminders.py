"""A reminder before the due date, once per assignment, by mail."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models._base import utcnow
from dispatcher.periodic import periodic_jobs
from dispatcher.teammates.reminders import send_reminders
from teammates.conftest import body, link_in


def test_a_reminder_goes_once_the_day_before(job, inbox, run_jobs):
    job.due_date = utcnow().date() + timedelta(days=3)
    db.session.commit()
    dispatch_service.dispatch_job(job)
    run_jobs()
    assert send_reminders() == 0  # three days ahead: not yet
    job.due_date = utcnow().date() + timedelta(days=1)
    db.session.commit()
    assert send_reminders() == 1
    assert send_reminders() == 0  # once per assignment
    run_jobs()
    reminder = inbox.last("reminder")
    assert job.due_date.isoformat() in body(reminder)
    assert link_in(reminder)
    assert inbox.kinds() == ["brief", "reminder"]


def test_no_reminder_for_work_already_handed_in(job, inbox, client, run_jobs):
    from teammates.test_email_loop import act

    job.due_date = utcnow().date() + timedelta(days=1)
    db.session.commit()
    dispatch_service.dispatch_job(job)
    run_jobs()
    act(client, link_in(inbox.last("brief")), "submit", text="Done early.")
    assert send_reminders() == 0


def test_reminders_run_on_the_slow_queue():
    [entry] = [p for p in periodic_jobs() if p.func is send_reminders]
    assert entry.queue == "slow"
