"""The People pages: list, add, edit, archive; form errors; another owner's person is 404."""

from __future__ import annotations

import re

from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Person

from .conftest import page, reload

NEW = {
    "name": "Sam Writer",
    "email": "sam@example.com",
    "rate": "40.00",
    "currency": "usd",
    "slack_handle": "@sam",
    "trello_handle": "",
    "asana_handle": "",
    "endpoint_url": "https://sam.example.com/jobs",
    "notes": "Writes guest posts",
}


def _people():
    return db.session.scalars(select(Person).order_by(Person.id)).all()


def test_the_nav_links_to_people_and_the_empty_page_says_what_to_do(client, ann):
    html = page(client.get("/people"))
    assert re.search(r'<a href="/people" aria-current="page">People</a>', html)
    assert "No people yet" in html


def test_add_a_person_then_they_are_listed_with_an_empty_scorecard(client, ann):
    response = client.post("/people", data=NEW, follow_redirects=True)
    assert "Added Sam Writer." in page(response)
    (sam,) = _people()
    assert (sam.owner_id, sam.name, sam.email, sam.rate_cents, sam.currency) == (
        ann.id, "Sam Writer", "sam@example.com", 4_000, "USD",
    )  # fmt: skip
    assert sam.endpoint_url == "https://sam.example.com/jobs" and sam.slack_handle == "@sam"
    html = page(response)
    row = html[html.index(f'id="person-{sam.id}"') :]
    assert "40.00" in row[:800] and 'data-figure="jobs">0<' in row


def test_bad_fields_are_form_errors_not_saved(client, ann):
    cases = [
        ({"email": "sam-at-example"}, "is not an email address"),
        ({"endpoint_url": "ftp://sam.example.com/x"}, "give an http:// or https:// address"),
        ({"endpoint_url": "sam.example.com"}, "give an http:// or https:// address"),
        # outbound URL safety: nothing inside the operator's own network
        ({"endpoint_url": "http://127.0.0.1:8080/jobs"}, "loopback"),
        ({"endpoint_url": "http://[fd00::5]/jobs"}, "private"),
        ({"name": "  "}, "give a name"),
    ]
    for change, message in cases:
        response = client.post("/people", data={**NEW, **change})
        assert response.status_code == 400, change
        html = page(response)
        assert message in html, (change, html[html.find("error") - 200 :][:600])
        assert 'class="error"' in html
    assert _people() == []


def test_a_negative_rate_names_the_rule(client, ann):
    html = page(client.post("/people", data={**NEW, "rate": "-5.00"}))
    assert "“-5.00” is not an amount" in html or "cannot be negative" in html


def test_edit_and_archive_and_restore(client, ann, person):
    sam = person()
    response = client.post(
        f"/people/{sam.id}", data={**NEW, "name": "Sam W.", "rate": ""}, follow_redirects=True
    )
    assert "Saved Sam W." in page(response)
    sam = reload(sam)
    assert (sam.name, sam.rate_cents) == ("Sam W.", None)

    response = client.post(f"/people/{sam.id}/archive", follow_redirects=True)
    assert "Archived Sam W." in page(response)
    assert reload(sam).archived is True
    assert f'id="person-{sam.id}"' not in page(client.get("/people"))
    assert f'id="person-{sam.id}"' in page(client.get("/people?archived=1"))

    client.post(f"/people/{sam.id}/archive", data={"restore": "1"})
    assert reload(sam).archived is False


def test_an_edit_with_a_bad_email_is_refused_on_the_persons_page(client, ann, person):
    sam = person()
    response = client.post(f"/people/{sam.id}", data={**NEW, "email": "nope"})
    assert response.status_code == 400 and "is not an email address" in page(response)
    assert reload(sam).email == "sam@example.com"


def test_another_owners_person_is_404_everywhere(client, ann, bob_client, person):
    sam = person()
    assert bob_client.get(f"/people/{sam.id}").status_code == 404
    assert bob_client.post(f"/people/{sam.id}", data=NEW).status_code == 404
    assert bob_client.post(f"/people/{sam.id}/archive").status_code == 404
    assert "Sam Writer" not in page(bob_client.get("/people"))
    assert reload(sam).archived is False and reload(sam).name == "Sam Writer"
