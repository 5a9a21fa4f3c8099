"""Submission links: only the hash is stored; forged, expired and revoked links get a clear
page (404 / 410) and never the job; the owner withdraws them from the job page."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

from sqlalchemy import select, update

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Assignment, SubmissionLink
from dispatcher.models._base import utcnow
from dispatcher.teammates import links
from teammates.conftest import link_in


def _sent(job, inbox, run_jobs) -> str:
    dispatch_service.dispatch_job(job)
    run_jobs()
    return link_in(inbox.last("brief"))


def _path(url: str) -> str:
    return url.removeprefix("http://dispatcher.test")


def test_only_the_tokens_hash_is_stored(job, inbox, run_jobs):
    url = _sent(job, inbox, run_jobs)
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    stored = db.session.scalars(select(SubmissionLink.token_hash)).all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert all(token not in h for h in stored)


def test_a_forged_link_gets_404_and_no_job(job, inbox, client, run_jobs):
    url = _sent(job, inbox, run_jobs)
    forged = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    for path in (_path(forged), "/t/x", "/t/" + "A" * 300):
        response = client.get(path)
        assert response.status_code == 404
        html = response.get_data(as_text=True)
        assert "This link does not work" in html
        assert "Write the launch post" not in html and "800 words" not in html
    assert client.post(_path(forged), data={"action": "take"}).status_code == 404


def test_an_expired_link_gets_410(job, inbox, client, run_jobs):
    url = _sent(job, inbox, run_jobs)
    db.session.execute(update(SubmissionLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    response = client.get(_path(url))
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert "Write the launch post" not in response.get_data(as_text=True)


def test_the_owner_revokes_links_from_the_job_page(job, inbox, client, login, run_jobs):
    url = _sent(job, inbox, run_jobs)
    owner = login()
    page = owner.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "revoke-links" in page
    response = owner.post(f"/jobs/{job.id}/links/revoke", follow_redirects=True)
    assert "Withdrew 1 link" in response.get_data(as_text=True)
    owner.post("/logout")
    gone = client.get(_path(url))
    assert gone.status_code == 410
    assert "withdrawn" in gone.get_data(as_text=True)
    assert "Write the launch post" not in gone.get_data(as_text=True)


def test_another_owner_cannot_revoke(job, inbox, client, run_jobs):
    from dispatch.helpers import make_owner

    _sent(job, inbox, run_jobs)
    make_owner("bob@example.com")
    client.post("/login", data={"email": "bob@example.com", "password": "correct horse"})
    assert client.post(f"/jobs/{job.id}/links/revoke").status_code == 404
    assert db.session.scalar(select(SubmissionLink.revoked_at)) is None


def test_a_link_outlives_the_due_date(job, app):
    job.due_date = date.today() + timedelta(days=90)
    db.session.commit()
    expires = links.expiry_for(job)
    settings = app.config["SETTINGS"]
    assert expires.date() > job.due_date + timedelta(days=settings.submission_link_grace_days)
    job.due_date = None
    assert (links.expiry_for(job) - utcnow()).days in (29, 30)


def test_the_assignment_names_the_person(job, inbox, person, run_jobs):
    _sent(job, inbox, run_jobs)
    assert db.session.scalar(select(Assignment.person_id)) == person.id
