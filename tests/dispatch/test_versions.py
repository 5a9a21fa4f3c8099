"""A job's title, brief and criteria are fixed once an order holds them: an edit makes a new
version, each order goes to the platform with the version it recorded, and the next order
with the newest."""

from __future__ import annotations

from sqlalchemy import select

from dispatch.helpers import delegated
from dispatcher.dispatch import send, service
from dispatcher.extensions import db
from dispatcher.models import Event, JobVersion
from dispatcher.planning import tree


def kept_versions(job) -> list[tuple[int, str, str, list[str]]]:
    rows = db.session.scalars(
        select(JobVersion).where(JobVersion.job_id == job.id).order_by(JobVersion.version)
    ).all()
    return [(v.version, v.title, v.brief, v.acceptance_criteria) for v in rows]


def sent(sandbox, dispatch) -> tuple[str, str, list[str]]:
    db.session.refresh(dispatch)
    order = sandbox.market.get_order(dispatch.external_id)
    return order["title"], order["brief"], order["acceptance_criteria"]


def test_an_edit_after_an_order_holds_the_text_makes_a_new_version(goal, paused):
    job = delegated(goal, title="Draft title", brief="old brief", acceptance_criteria=["a"])
    tree.update_job(job, title="Write a post")  # no order yet: edited in place
    assert job.version == 1 and kept_versions(job) == []

    first = service.dispatch_job(job)
    assert first.job_version == 1
    tree.update_job(
        job, title="Write a better post", brief="new brief", acceptance_criteria=["a", "b"]
    )
    assert job.version == 2
    assert kept_versions(job) == [(1, "Write a post", "old brief", ["a"])]
    updated = db.session.scalars(
        select(Event).where(Event.job_id == job.id, Event.kind == "job_updated")
    ).all()
    assert [e.data.get("version") for e in updated] == [None, 2]

    # the order staged before the edit goes out as it was staged
    assert send.send_dispatch(first.id) == "placed"
    assert sent(paused, first) == ("Write a post", "old brief", ["a"])

    tree.update_job(job, brief="newer brief")  # no order holds version 2 yet: in place
    assert job.version == 2 and len(kept_versions(job)) == 1

    service.cancel_job(job)
    second = service.retry_job(job)
    assert second.job_version == 2
    assert send.send_dispatch(second.id) == "placed"
    assert sent(paused, second) == ("Write a better post", "newer brief", ["a", "b"])


def test_edits_that_leave_the_text_alone_make_no_version(goal):
    job = delegated(goal, title="Write a post", planned_for=None)
    service.dispatch_job(job)
    tree.update_job(job, estimate_minutes=30, title="Write a post")
    assert job.version == 1 and kept_versions(job) == []
