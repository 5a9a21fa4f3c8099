"""The teammate loop through every channel that is not email: Slack, a teammate's own webhook
endpoint, Trello and Asana, each a real HTTP fake on loopback. The brief reaches the channel with
the submission link; the teammate follows it (no account), asks a question; the owner's answer
reaches the channel; the teammate hands in a file; the owner's revision request reaches the
channel with a fresh link; the revised work is accepted and paid, and the channel hears it."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from fakes import asana, trello
from fakes.asana import FakeAsana
from fakes.slack import FakeSlack, buttons
from fakes.teammate_endpoint import TeammateEndpoint
from fakes.trello import FakeTrello
from sqlalchemy import select

from dispatcher import connections
from dispatcher.dispatch import review as review_service
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Delivery, Event, MicroJob, OutboxMessage, Person
from dispatcher.planning import tree
from teammates.test_email_loop import act

LINK = re.compile(r"http://dispatcher\.test/t/[A-Za-z0-9_-]+")
ENDPOINT_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(scope="module")
def fakes():
    running = {
        "slack": FakeSlack().start(),
        "webhook": TeammateEndpoint(ENDPOINT_SECRET).start(),
        "trello": FakeTrello().start(),
        "asana": FakeAsana().start(),
    }
    yield running
    for fake in running.values():
        fake.stop()


@pytest.fixture
def app_config(app_config, fakes):
    return {
        **app_config,
        "outbound_allowlist": (fakes["slack"].hostport, fakes["webhook"].hostport),
        "trello_api_base": fakes["trello"].url,
        "asana_api_base": fakes["asana"].url,
    }


@dataclass
class Channel:
    """How one channel is connected, and how to read what it received about one order."""

    name: str
    fake: Any

    def connect(self, owner_id: int):
        credentials, options = {
            "slack": (
                {
                    "webhook_url": self.fake.webhook_url if self.name == "slack" else "",
                    "signing_secret": "slack-signing",
                },
                {},
            ),  # fmt: skip
            "webhook": ({}, {}),
            "trello": (
                {"api_key": trello.API_KEY, "token": trello.TOKEN, "app_secret": trello.APP_SECRET},
                {"board_id": trello.BOARD, "list_id": trello.TODO, "done_list_id": trello.DONE},
            ),  # fmt: skip
            "asana": ({"token": asana.TOKEN}, {"project_gid": asana.PROJECT}),
        }[self.name]
        connection, _ = connections.create(owner_id, self.name, f"Team {self.name}",
                                           credentials, options)  # fmt: skip
        if self.name == "webhook":
            connection.webhook_secret = ENDPOINT_SECRET  # the secret the endpoint verifies with
        db.session.commit()
        return connection

    def texts(self, order: str) -> list[str]:
        """Everything the channel received about the order, brief first, as text."""
        if self.name == "slack":
            return [str(m) for m in self.fake.messages if order in str(m) or not _is_brief(m)]
        if self.name == "webhook":
            return [str(e) for e in self.fake.events.values() if e["data"].get("order_id") == order]
        if self.name == "trello":
            card = self.fake.cards[order]
            return [card["name"] + "\n" + card["desc"], *self.fake.comments(order)]
        task = self.fake.tasks[order]
        return [task["name"] + "\n" + task["notes"], *self.fake.comments(order)]


def _is_brief(message: dict[str, Any]) -> bool:
    return "Take it" in buttons(message)


@pytest.fixture(params=["slack", "webhook", "trello", "asana"])
def channel(request, fakes) -> Channel:
    return Channel(request.param, fakes[request.param])


def links(text: str) -> list[str]:
    """The distinct submission links in a message (a Slack message has it as a button too)."""
    return sorted(set(LINK.findall(text)))


def test_the_loop_through_the_channel(channel, owner, client, login, run_jobs, fakes):
    connection = channel.connect(owner.id)
    person = Person(owner_id=owner.id, name="Ann Writer", email="ann@example.com",
                    slack_handle="U0ANN1234", trello_handle="bob", asana_handle=asana.BOB["gid"],
                    endpoint_url=fakes["webhook"].url)  # fmt: skip
    db.session.add(person)
    goal = tree.create_goal(owner.id, title="Spring campaign", budget_cents=10_000)
    job = tree.add_job(goal, title="Write the spring newsletter", price_cents=2500,
                       brief="600 words on the new menu.", mode="delegate",
                       channel=connection.adapter)  # fmt: skip
    job.person_id = person.id
    db.session.commit()
    dispatch = dispatch_service.dispatch_job(job)
    run_jobs()
    db.session.refresh(dispatch)
    assert dispatch.state == "placed", dispatch.last_error
    order = dispatch.external_id

    # the brief, with the submission link, reached the channel
    [brief] = channel.texts(order)
    assert "Write the spring newsletter" in brief
    assert "25.00" in brief or "'amount_cents': 2500" in brief
    [url] = links(brief)

    # the teammate takes the job and asks a question on the page (no account)
    assert act(client, url, "take").status_code == 303
    assert act(client, url, "question", text="Which menu items?").status_code == 303
    question = db.session.scalars(
        select(Event).where(Event.job_id == job.id, Event.kind == "teammate.question")
    ).one()
    owner_client = login()
    answered = owner_client.post(f"/jobs/{job.id}/questions/{question.id}/answer",
                                 data={"text": "The three new salads."})  # fmt: skip
    assert answered.status_code == 303
    run_jobs()
    assert any("The three new salads." in t for t in channel.texts(order)[1:])

    # a file handed in, then a revision request that reaches the channel with a fresh link
    sent = act(client, url, "submit", text="Draft attached.",
               files=[(io.BytesIO(b"the draft"), "draft.txt")])  # fmt: skip
    assert sent.status_code == 303
    first = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id)).one()
    review_service.request_revision(first, feedback="Name the salads in the title.")
    run_jobs()
    [revision] = [t for t in channel.texts(order) if "Name the salads in the title." in t]
    [fresh] = links(revision)
    assert fresh != url
    assert act(client, fresh, "submit", text="Revised: Three new salads").status_code == 303

    # accepted: paid at once (no platform to ask), and the channel hears it
    second = db.session.scalars(
        select(Delivery).where(Delivery.job_id == job.id, Delivery.id != first.id)
    ).one()
    review_service.accept(second)
    run_jobs()
    db.session.expire_all()
    done = db.session.get(MicroJob, job.id)
    assert (done.status, done.spent_cents) == ("paid", 2500)
    kinds = [m.kind for m in db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.connection_id == connection.id)
        .order_by(OutboxMessage.id))]  # fmt: skip
    assert kinds == ["answer", "revision", "accepted"]
    assert len(channel.texts(order)) == 4  # the brief and three notices, each once
