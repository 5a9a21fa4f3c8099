"""Both teammate channels through the real app: a connection to an allow-listed fake, a
person, a job named for them delegated and sent by the RQ worker, the fake receiving the
job, signed callbacks coming back through /webhooks/<adapter>/<path>, and the job moving to
taken and then into review. Forged or old signatures get 401 and change nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from dispatch.helpers import make_owner
from fakes.slack import FakeSlack, buttons
from fakes.teammate_endpoint import TeammateEndpoint, callback
from sqlalchemy import func, select

from dispatcher import connections
from dispatcher.dispatch import review, service
from dispatcher.extensions import db
from dispatcher.lifecycle import PushState, Status
from dispatcher.models import Event, InboundEvent, Person
from dispatcher.planning import tree

#: the submission links and the person's details reach JobSpec through the email channel's
#: work (dispatcher/teammates); until it is merged the loop checks what it can without them


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def endpoint():
    running = TeammateEndpoint("whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").start()
    yield running
    running.stop()


@pytest.fixture
def app_config(app_config, slack, endpoint):
    # CSRF on, as in production: Slack's form-encoded callbacks must still get through
    return {**app_config, "extra": {}, "outbound_allowlist": (slack.hostport, endpoint.hostport)}


@pytest.fixture
def owner(app):
    return make_owner()


def delegate(owner, channel: str, **person_fields):
    person = Person(owner_id=owner.id, name="Ann Writer", email="ann@example.com", **person_fields)
    db.session.add(person)
    goal = tree.create_goal(owner.id, title="Monthly newsletter", budget_cents=10_000)
    job = tree.add_job(
        goal,
        title="Write the spring newsletter",
        brief="600 words on the new menu.",
        acceptance_criteria=["mentions the opening hours"],
        price_cents=2500,
        mode="delegate",
        channel=channel,
    )
    job.person_id = person.id
    db.session.commit()
    return job


def inbound_count() -> int:
    return db.session.scalar(select(func.count(InboundEvent.id)))


def post(client, connection, headers, body):
    return client.post(connections.webhook_path(connection), data=body, headers=headers)


def accepted_by_owner(delivery, job, run_jobs) -> None:
    """The owner accepts: a teammate channel has no platform to ask, so the decision is
    never refused for want of one."""
    decision = review.accept(delivery, rating=5)
    run_jobs()
    db.session.refresh(decision)
    db.session.refresh(job)
    assert job.status in (Status.ACCEPTED, Status.PAID), (job.status, decision.push_state)
    assert decision.push_state in (PushState.NONE, PushState.PUSHED), decision.push_state


def test_the_slack_loop(owner, slack, client, run_jobs):
    connection, _ = connections.create(
        owner.id, "slack", "Team Slack",
        {"webhook_url": slack.webhook_url, "signing_secret": slack.signing_secret},
    )  # fmt: skip
    db.session.commit()
    job = delegate(owner, "slack", slack_handle="U0ANN1234")
    dispatch = service.dispatch_job(job)
    run_jobs()

    db.session.refresh(job)
    db.session.refresh(dispatch)
    assert job.status == Status.DISPATCHED
    [message] = slack.messages
    found = buttons(message)
    assert found["Take it"]["value"] == found["Done"]["value"] == dispatch.external_id
    assert "Write the spring newsletter" in str(message) and "25.00 USD" in str(message)
    assert found["Submit work"]["url"].startswith("http")
    assert "<@U0ANN1234>" in str(message)

    # a forged press and an old one: 401, nothing stored, nothing moves
    headers, body = slack.press(message, "Take it", secret="someone-elses-signing-secret")
    assert post(client, connection, headers, body).status_code == 401
    headers, body = slack.press(message, "Take it", timestamp=int(time.time()) - 600)
    assert post(client, connection, headers, body).status_code == 401
    assert inbound_count() == 0

    headers, body = slack.press(message, "Take it", user="ann.writer")
    answer = post(client, connection, headers, body)
    assert answer.status_code == 200  # Slack wants exactly 200
    assert post(client, connection, headers, body).status_code == 200  # a repeat: no-op
    run_jobs()
    db.session.refresh(job)
    assert job.status == Status.TAKEN

    headers, body = slack.press(message, "Done", user="ann.writer")
    assert post(client, connection, headers, body).status_code == 200
    run_jobs()
    db.session.refresh(job)
    assert job.status == Status.DELIVERED  # waiting in the owner's review
    [delivery] = review.awaiting_review(owner.id)
    assert delivery.job_id == job.id
    assert "ann.writer" in delivery.content and delivery.worker_ref == "ann.writer"
    accepted_by_owner(delivery, job, run_jobs)


def test_the_webhook_loop(owner, endpoint, client, run_jobs):
    connection, _ = connections.create(
        owner.id, "webhook", "Dev Co's system", {}, {"endpoint_url": endpoint.url}
    )
    connection.webhook_secret = endpoint.secret  # the secret their system was given
    db.session.commit()
    job = delegate(owner, "webhook", endpoint_url=endpoint.url)
    dispatch = service.dispatch_job(job)
    run_jobs()

    db.session.refresh(job)
    db.session.refresh(dispatch)
    assert job.status == Status.DISPATCHED
    [event] = endpoint.received  # verified by the standardwebhooks package
    assert event["type"] == "job.assigned"
    data = event["data"]
    assert (data["order_id"], data["job_id"], data["title"]) == (
        dispatch.external_id, job.id, "Write the spring newsletter")  # fmt: skip
    assert data["pay"] == {"amount_cents": 2500, "currency": "USD"}
    assert data["submission_url"].startswith("http")

    order = {"order_id": dispatch.external_id}
    headers, body = callback("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", "job.taken", order)
    assert post(client, connection, headers, body).status_code == 401
    headers, body = callback(
        endpoint.secret, "job.taken", order,
        when=datetime.now(UTC) - timedelta(minutes=10),
    )  # fmt: skip
    assert post(client, connection, headers, body).status_code == 401
    assert inbound_count() == 0

    headers, body = callback(endpoint.secret, "job.taken", {**order, "worker": "dev-co"})
    assert post(client, connection, headers, body).status_code == 202
    headers, body = callback(endpoint.secret, "job.question", {**order, "content": "Safari 16?"})
    assert post(client, connection, headers, body).status_code == 202
    headers, body = callback(endpoint.secret, "job.celebrated", order)
    assert post(client, connection, headers, body).status_code == 200  # stored as ignored
    run_jobs()
    db.session.refresh(job)
    assert job.status == Status.TAKEN
    questions = db.session.scalars(
        select(Event).where(Event.job_id == job.id, Event.kind == "teammate.question")
    ).all()
    assert [q.data["text"] for q in questions] == ["Safari 16?"]  # on the owner's timeline

    delivered = {**order, "content": "Fixed, see the PR", "url": "https://git.example/pr/7"}
    headers, body = callback(endpoint.secret, "job.delivered", delivered)
    assert post(client, connection, headers, body).status_code == 202
    run_jobs()
    db.session.refresh(job)
    assert job.status == Status.DELIVERED  # waiting in the owner's review
    [delivery] = review.awaiting_review(owner.id)
    assert (delivery.content, delivery.url) == ("Fixed, see the PR", "https://git.example/pr/7")
    accepted_by_owner(delivery, job, run_jobs)


def test_an_unsafe_url_is_refused_when_the_connection_is_saved(owner, client):
    with pytest.raises(ValueError, match="loopback") as refused:
        connections.create(
            owner.id, "slack", "Team Slack",
            {"webhook_url": "http://127.0.0.1:1/services/x", "signing_secret": "s"},
        )  # fmt: skip
    assert refused.value.field == "webhook_url"
