"""A teammate channel takes one named person, one assignment, and a person it can reach:
anything else is refused before money moves, on the page and in the API (4xx, never 500)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dispatcher.auth_tokens import issue_token
from dispatcher.dispatch import service as dispatch_service
from dispatcher.errors import InvalidChange
from dispatcher.extensions import db
from dispatcher.models import Dispatch, Goal, MicroJob, Person


def _nothing_moved(job) -> None:
    assert db.session.scalar(select(db.func.count()).select_from(Dispatch)) == 0
    assert db.session.get(MicroJob, job.id).reserved_cents == 0
    assert db.session.get(Goal, job.goal_id).reserved_cents == 0


def test_a_job_naming_nobody_is_refused(job):
    job.person_id = None
    db.session.commit()
    with pytest.raises(InvalidChange, match="pick who does"):
        dispatch_service.dispatch_job(job)
    db.session.rollback()
    _nothing_moved(job)


def test_several_assignments_are_refused(job):
    job.assignments = 2
    db.session.commit()
    with pytest.raises(InvalidChange, match="one"):
        dispatch_service.dispatch_job(job)
    db.session.rollback()
    _nothing_moved(job)


def test_a_person_without_an_email_address_is_refused(job, person):
    person.email = ""
    db.session.commit()
    with pytest.raises(InvalidChange, match="no email address"):
        dispatch_service.dispatch_job(job)
    db.session.rollback()
    _nothing_moved(job)


def test_another_owners_person_is_refused(job):
    from dispatch.helpers import make_owner

    bob = make_owner("bob@example.com")
    stranger = Person(owner_id=bob.id, name="Stranger", email="s@example.com")
    db.session.add(stranger)
    db.session.commit()
    job.person_id = stranger.id
    db.session.commit()
    with pytest.raises(InvalidChange):
        dispatch_service.dispatch_job(job)
    db.session.rollback()
    _nothing_moved(job)


def test_the_api_answers_422_with_the_reason(job, owner, client):
    job.person_id = None
    db.session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(owner, 't').secret}"
    response = client.post(f"/api/v1/jobs/{job.id}/dispatch")
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "pick who does" in response.get_data(as_text=True)
    _nothing_moved(job)


def test_the_job_page_says_why(job, login):
    job.person_id = None
    db.session.commit()
    owner = login()
    response = owner.post(f"/jobs/{job.id}/dispatch", follow_redirects=True)
    assert response.status_code == 200
    assert "pick who does" in response.get_data(as_text=True)
    _nothing_moved(job)


def test_a_job_with_no_price_may_go_to_a_teammate(job):
    job.price_cents = 0
    db.session.commit()
    dispatch = dispatch_service.dispatch_job(job)
    assert dispatch.state == "pending"
