"""Fixtures for teammate channels: a real SMTP server (aiosmtpd) on loopback, an owner with
an email connection and a person, and a job delegated to that person."""

from __future__ import annotations

import re
import threading
import time
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from dispatch.helpers import make_owner
from fakes.smtp import free_port

from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.models import Person
from dispatcher.planning import tree

LINK = re.compile(r"(http://dispatcher\.test/t/[A-Za-z0-9_-]+)")


class Inbox:
    """Keeps every message; `delay` holds each DATA (to make attempts overlap)."""

    def __init__(self):
        self.messages = []
        self.delay = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def kinds(self) -> list[str]:
        return [m["X-Dispatcher-Kind"] for m in self.messages]

    def last(self, kind: str):
        return [m for m in self.messages if m["X-Dispatcher-Kind"] == kind][-1]


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message) -> str:
    found = LINK.findall(body(message))
    assert len(found) == 1, body(message)
    return found[0]


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def inbox(smtp_port):
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture
def app_config(app_config, smtp_port):
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
