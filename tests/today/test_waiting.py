"""Issue 11 part 1: a dispatched job waiting at a channel says what it waits for and since
when, in one wording on the job row, the goal page and Today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes.work import event, place
from sqlalchemy import update
from web.test_query_counts import counting

from adapters.base import EventKind
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.inbound.apply import apply_event
from dispatcher.models import Event, Person
from dispatcher.planning import tree
from dispatcher.today import since_text, waiting_for

from .conftest import make_owner

NOW = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def out_job(goal):
    return tree.add_job(
        goal, title="Write a guest post", mode="delegate", channel="sandbox", price_cents=500
    )


def _backdate(job, status: str, at: datetime) -> None:
    """Say the job entered `status` at `at` (its Event's time)."""
    db.session.execute(
        update(Event).where(Event.job_id == job.id, Event.to_status == status).values(created_at=at)
    )
    db.session.commit()


def test_each_waiting_status_says_what_it_waits_for(owner, out_job):
    dispatch = dispatch_service.dispatch_job(out_job)
    _backdate(out_job, "queued", NOW - timedelta(minutes=3))
    assert waiting_for([out_job], owner, NOW) == {
        out_job.id: "waiting to be sent to sandbox since 15:27"
    }

    place(dispatch)
    db.session.commit()
    _backdate(out_job, "dispatched", datetime(2026, 12, 2, 14, 2, tzinfo=UTC))
    assert waiting_for([out_job], owner, NOW)[out_job.id] == (
        "waiting for a worker to take it since 14:02"
    )

    apply_event(dispatch.adapter, event(dispatch, EventKind.TAKEN, worker="w7"))
    db.session.commit()
    assert out_job.status == "taken"
    _backdate(out_job, "taken", datetime(2026, 11, 30, 9, 0, tzinfo=UTC))  # Monday
    assert waiting_for([out_job], owner, NOW)[out_job.id] == (
        "waiting for the worker’s submission since Mon"
    )


def test_a_named_person_is_named(owner, out_job):
    ana = Person(owner_id=owner.id, name="Ana")
    db.session.add(ana)
    db.session.commit()
    out_job.person_id = ana.id
    db.session.commit()
    dispatch = dispatch_service.dispatch_job(out_job)
    place(dispatch)
    apply_event(dispatch.adapter, event(dispatch, EventKind.TAKEN, worker="ana"))
    db.session.commit()
    _backdate(out_job, "taken", datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    assert waiting_for([out_job], owner, NOW) == {
        out_job.id: "waiting for Ana’s submission since Mon"
    }


def test_jobs_that_wait_on_nobody_say_nothing(owner, goal, out_job):
    kept = tree.add_job(goal, title="Call the editor", mode="keep")
    assert waiting_for([kept, out_job], owner, NOW) == {}  # draft and kept: no one holds it


def test_since_is_in_the_owners_time_zone_and_as_short_as_it_can_be(app):
    tokyo = make_owner("kenji@example.com", timezone="Asia/Tokyo")
    utc = make_owner("ann2@example.com")
    at = datetime(2026, 12, 2, 14, 2, tzinfo=UTC)
    assert since_text(at, utc, NOW) == "14:02"
    assert since_text(at, tokyo, NOW) == "Wed"  # 23:02 on the 2nd there, now 00:30 on the 3rd
    assert since_text(datetime(2026, 11, 26, 10, 0, tzinfo=UTC), utc, NOW) == "Thu"
    assert since_text(datetime(2026, 11, 20, 10, 0, tzinfo=UTC), utc, NOW) == "20 Nov"
    assert since_text(datetime(2025, 3, 3, 10, 0, tzinfo=UTC), utc, NOW) == "3 Mar 2025"


def test_two_queries_for_any_number_of_jobs(owner, goal):
    ana = Person(owner_id=owner.id, name="Ana")
    db.session.add(ana)
    db.session.commit()
    jobs = []
    for n in range(12):
        job = tree.add_job(
            goal, title=f"Post {n}", mode="delegate", channel="sandbox", price_cents=100
        )
        job.person_id = ana.id if n % 2 else None
        db.session.commit()
        place(dispatch_service.dispatch_job(job))
        db.session.commit()
        jobs.append(job)
    db.session.expire_all()
    jobs = [db.session.get(type(job), job.id) for job in jobs]
    assert owner.timezone == "UTC"  # loaded again before counting
    with counting() as statements:
        texts = waiting_for(jobs, owner, NOW)
    assert len(statements) == 2
    assert sorted(set(t.split(" since ")[0] for t in texts.values())) == [
        "waiting for Ana to take it", "waiting for a worker to take it",
    ]  # fmt: skip
