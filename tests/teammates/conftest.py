"""Fixtures for teammate channels: a real SMTP server (aiosmtpd) on loopback, an owner with
an email connection and a person, and a job delegated to that person."""

from __future__ import annotations

import re

import pytest
from dispatch.helpers import make_owner
from fakes.smtp import inbox, smtp_port  # noqa: F401  (fixtures)

from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.models import Person
from dispatcher.planning import tree

LINK = re.compile(r"(http://dispatcher\.test/t/[A-Za-z0-9_-]+)")


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message) -> str:
    found = LINK.findall(body(message))
    assert len(found) == 1, body(message)
    return found[0]


@pytest.fixture
def app_config(app_config, smtp_port):  # noqa: F811  (the fixture imported above)
    return {
        **app_config,
        "smtp_url": f"smtp://127.0.0.1:{smtp_port}",
        "public_base_url": "http://dispatcher.test",
        "upload_max_bytes": 1000,
    }


@pytest.fixture
def owner(app):
    return make_owner()


@pytest.fixture
def email_connection(owner):
    connection, _ = connections.create(owner.id, "email", "Email")
    db.session.commit()
    return connection


@pytest.fixture
def person(owner):
    person = Person(owner_id=owner.id, name="Wendy Writer", email="wendy@example.com")
    db.session.add(person)
    db.session.commit()
    return person


@pytest.fixture
def goal(owner):
    return tree.create_goal(owner.id, title="52 guest posts", budget_cents=10_000)


@pytest.fixture
def job(goal, email_connection, person):
    job = tree.add_job(
        goal,
        title="Write the launch post",
        price_cents=2500,
        mode="delegate",
        channel="email",
        brief="800 words about the launch.",
        acceptance_criteria=["Mentions the date", "Has a title"],
    )
    job.person_id = person.id
    db.session.commit()
    return job


@pytest.fixture
def login(client, owner):
    def _login():
        response = client.post("/login", data={"email": owner.email, "password": "correct horse"})
        assert response.status_code == 303, response.get_data(as_text=True)
        return client

    return _login
