"""The Today page and its actions over HTTP, and the digest settings form."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dispatcher import create_app
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import MicroJob, Owner
from dispatcher.planning import tree
from dispatcher.today import local_today

from .conftest import make_owner


@pytest.fixture
def day(owner):
    return local_today(owner)


def test_today_needs_a_login(client, user_loader):
    response = client.get("/today")
    assert response.status_code in (302, 401)


def test_page_shows_every_section(login, owner, goal, day, flow):
    tree.add_job(goal, title="Pitch 12 sites", mode="keep", planned_for=day)
    tree.add_job(goal, title="Outline the post", mode="keep", due_date=day - timedelta(days=2))
    out = tree.add_job(
        goal, title="Find blogs", mode="delegate", channel="sandbox", price_cents=500
    )
    flow.dispatch(out)
    client = login(owner)

    page = client.get("/today").get_data(as_text=True)

    assert "Pitch 12 sites" in page
    assert "Outline the post" in page and f"due {(day - timedelta(days=2)).isoformat()}" in page
    assert "Find blogs" in page and "dispatched" in page
    assert "Nothing waiting for you." in page
    assert day.strftime("%A") in page


def test_check_off(login, owner, goal, day):
    job = tree.add_job(goal, title="Pitch 12 sites", mode="keep", planned_for=day)
    client = login(owner)

    response = client.post(f"/today/jobs/{job.id}/done")

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/today")
    assert db.session.get(MicroJob, job.id).status == Status.DONE
    page = client.get("/today").get_data(as_text=True)
    assert "Done: Pitch 12 sites" in page
    assert 'id="done"' in page


def test_refusals_are_shown_not_raised(login, owner, goal):
    job = tree.add_job(goal, title="Delegated one", mode="delegate", channel="sandbox")
    client = login(owner)

    response = client.post(f"/today/jobs/{job.id}/done", follow_redirects=True)

    assert response.status_code == 200
    assert "it is delegated" in response.get_data(as_text=True)
    assert db.session.get(MicroJob, job.id).status == Status.DRAFT


def test_other_owners_jobs_are_not_found(login, owner, app):
    other = make_owner("bob@example.com")
    theirs = tree.add_job(tree.create_goal(other.id, title="Bob's"), title="b", mode="keep")
    client = login(owner)

    for action in ("done", "tomorrow", "plan"):
        assert client.post(f"/today/jobs/{theirs.id}/{action}").status_code == 404
    assert db.session.get(MicroJob, theirs.id).status == Status.DRAFT


def test_plan_and_push_to_tomorrow(login, owner, goal, day):
    job = tree.add_job(goal, title="Send follow-ups", mode="keep", planned_for=day)
    client = login(owner)
    later = day + timedelta(days=5)

    response = client.post(f"/today/jobs/{job.id}/plan", data={"day": later.isoformat()})
    assert response.status_code == 303
    assert db.session.get(MicroJob, job.id).planned_for == later

    tree.update_job(db.session.get(MicroJob, job.id), planned_for=day)
    assert client.post(f"/today/jobs/{job.id}/tomorrow").status_code == 303
    assert db.session.get(MicroJob, job.id).planned_for == day + timedelta(days=1)


def test_a_bad_date_is_a_400_with_the_reason(login, owner, goal, day):
    job = tree.add_job(goal, title="Send follow-ups", mode="keep", planned_for=day)
    client = login(owner)

    response = client.post(f"/today/jobs/{job.id}/plan", data={"day": "next tuesday"})

    assert response.status_code == 400
    assert "Not a valid date value" in response.get_data(as_text=True)
    assert db.session.get(MicroJob, job.id).planned_for == day


def test_digest_settings_save_and_validate(login, owner):
    client = login(owner)
    page = client.get("/settings/digest").get_data(as_text=True)
    assert 'value="UTC"' in page

    ok = client.post("/settings/digest", data={"timezone": "Europe/Paris", "digest_hour": "7"})
    assert ok.status_code == 303
    saved = db.session.get(Owner, owner.id)
    db.session.refresh(saved)
    assert (saved.timezone, saved.digest_hour) == ("Europe/Paris", 7)

    bad = client.post("/settings/digest", data={"timezone": "Paris", "digest_hour": "25"})
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "not a time zone we know" in text and "Not a valid choice" in text

    off = client.post("/settings/digest", data={"timezone": "Europe/Paris", "digest_hour": ""})
    assert off.status_code == 303
    db.session.refresh(saved)
    assert saved.digest_hour is None


def test_actions_need_the_csrf_token(app_config, owner, goal, user_loader):
    """With CSRF on (as in production), a POST without the token changes nothing."""
    job = tree.add_job(goal, title="Pitch", mode="keep")
    guarded = create_app({**app_config, "extra": {}})
    client = guarded.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(owner.id)

    assert client.post(f"/today/jobs/{job.id}/done").status_code == 400
    assert client.post("/settings/digest", data={"timezone": "UTC"}).status_code == 400
    db.session.refresh(job)
    assert job.status == Status.DRAFT
    with guarded.app_context():
        db.engine.dispose()
