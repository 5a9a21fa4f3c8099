"""Trello and Asana end to end through the real app: connect (the webhook registered over
real HTTP, the platform calling the live app back: Trello's HEAD check, Asana's
X-Hook-Secret handshake), a person, a job for them delegated and sent by the real send
path, the card or task on the fake, the person finishing it there, and the delivery in
review. Forged signatures get 401; a handshake for a connection that already has its
secret is refused and changes nothing."""

from __future__ import annotations

import pytest
import requests
from dispatch.helpers import make_owner
from fakes import asana, trello
from fakes.asana import FakeAsana
from fakes.live_app import base_url, loopback_socket, serve_app
from fakes.trello import FakeTrello
from sqlalchemy import select

from dispatcher import connections
from dispatcher.dispatch import service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Connection, Delivery, InboundEvent, Person
from dispatcher.planning import tree


@pytest.fixture
def trello_fake():
    fake = FakeTrello().start()
    yield fake
    fake.stop()


@pytest.fixture
def asana_fake():
    fake = FakeAsana().start()
    yield fake
    fake.stop()


@pytest.fixture
def live_socket():
    with loopback_socket() as sock:
        yield sock


@pytest.fixture
def app_config(app_config, live_socket, trello_fake, asana_fake):
    return {
        **app_config,
        "public_base_url": base_url(live_socket),
        "trello_api_base": trello_fake.url,
        "asana_api_base": asana_fake.url,
        "http_connect_timeout": 2.0,
        "http_read_timeout": 5.0,
    }


@pytest.fixture
def live(app, app_config, live_socket):
    with serve_app({**app_config, "extra": {}}, live_socket) as url:  # CSRF on, as served
        yield url


@pytest.fixture
def owner(app):
    return make_owner()


@pytest.fixture
def bob(owner):
    person = Person(owner_id=owner.id, name="Bob Baker", email="bob@example.com",
                    trello_handle="bob")  # fmt: skip
    db.session.add(person)
    db.session.commit()
    return person


def delegate_to(owner, person, connection: Connection):
    goal = tree.create_goal(owner.id, title="Launch", budget_cents=10_000)
    job = tree.add_job(
        goal,
        title="Proofread the launch post",
        brief="Fix typos and tighten the intro.",
        price_cents=2500,
        mode="delegate",
        channel=connection.adapter,
    )
    job.person_id = person.id
    db.session.commit()
    dispatch = service.dispatch_job(job)
    return job, dispatch


def inbound_rows(connection: Connection) -> list[InboundEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(InboundEvent)
            .where(InboundEvent.connection_id == connection.id)
            .order_by(InboundEvent.id)
        )
    )


def hook_url(connection: Connection, live: str) -> str:
    return live + connections.webhook_path(connection)


# -- Trello ---------------------------------------------------------------------------------
def connect_trello(owner) -> Connection:
    connection, _ = connections.create(
        owner.id,
        "trello",
        "Team board",
        {"api_key": trello.API_KEY, "token": trello.TOKEN, "app_secret": trello.APP_SECRET},
        {"board_id": trello.BOARD, "list_id": trello.TODO, "done_list_id": trello.DONE},
    )
    connections.sync_webhook(connection)
    db.session.commit()
    return connection


def test_trello_from_connect_to_a_delivery_in_review(live, owner, bob, trello_fake, run_jobs):
    connection = connect_trello(owner)
    # Trello checked the URL with HEAD before creating the webhook, against the live app
    [hook] = trello_fake.webhooks.values()
    assert hook["callbackURL"] == hook_url(connection, live)
    assert connection.check_ok is not False

    job, dispatch = delegate_to(owner, bob, connection)
    run_jobs()
    db.session.refresh(dispatch)
    card = trello_fake.cards[dispatch.external_id]
    assert card["name"] == "Proofread the launch post"
    assert "Fix typos and tighten the intro." in card["desc"] and "Pay: 25.00 USD" in card["desc"]
    assert card["idMembers"] == [trello.BOB["id"]]
    trello_fake.settle()  # the board's createCard echo: authentic, stored as ignored
    assert [r.status for r in inbound_rows(connection)] == ["ignored"]

    assert trello_fake.move(card["id"], trello.DONE) == [202]
    run_jobs()
    db.session.refresh(job)
    delivery = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id)).one()
    assert delivery.content == "Moved the card to Done" and delivery.url == card["shortUrl"]
    assert delivery.worker_ref == "bob"
    assert job.status in (Status.DELIVERED, Status.IN_REVIEW)


def test_trello_comments_with_a_link_deliver_and_others_are_messages(
    live, owner, bob, trello_fake, run_jobs
):
    connection = connect_trello(owner)
    job, dispatch = delegate_to(owner, bob, connection)
    run_jobs()
    db.session.refresh(dispatch)
    assert trello_fake.comment(dispatch.external_id, "Is British spelling fine?") == [202]
    assert trello_fake.comment(dispatch.external_id, "Here: https://docs.example/p/1") == [202]
    run_jobs()
    delivery = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id)).one()
    assert delivery.url == "https://docs.example/p/1"
    statuses = [r.status for r in inbound_rows(connection)]
    assert statuses.count("applied") == 2


def test_a_comment_on_a_card_that_is_not_ours_is_ignored_not_quarantined(
    live, owner, trello_fake, run_jobs
):
    """The board's webhook reports every card on it: an event about a card no order of ours
    made waits a little (our order may not be recorded yet), then is ignored, never shown to
    the owner as a failure."""
    from datetime import date, timedelta

    from rq import Retry

    from adapters.base import JobSpec
    from dispatcher.connections import adapter_for_connection
    from dispatcher.inbound import apply
    from dispatcher.models._base import utcnow

    connection = connect_trello(owner)
    spec = JobSpec(
        job_id=0, title="The owner's own card", brief="", acceptance_criteria=(),
        deliverable_kind="text", price_cents=0, currency="USD", due_date=date.today(),
    )  # fmt: skip
    theirs = adapter_for_connection(connection.id).dispatch(spec, "not-an-order-of-ours")
    trello_fake.settle()
    assert trello_fake.comment(theirs.external_id, "Looks good to me") == [202]
    [row] = [r for r in inbound_rows(connection) if r.status == "received"]
    assert isinstance(apply.apply_inbound(row.id), Retry)  # our order may be on its way
    row = db.session.get(InboundEvent, row.id)
    row.received_at = utcnow() - apply.WAIT_FOR_FOREIGN - timedelta(seconds=1)
    db.session.commit()
    assert apply.apply_inbound(row.id) == "ignored"
    db.session.refresh(row)
    assert row.status == "ignored" and "no order of ours" in row.error


def test_trello_forged_signatures_are_refused(live, owner, trello_fake):
    connection = connect_trello(owner)
    url = hook_url(connection, live)
    body = b'{"action": {"id": "a1", "type": "commentCard", "date": "2030-01-01T00:00:00Z"}}'
    forged = trello.sign(body, url, "not the app secret")
    answer = requests.post(url, data=body, headers={"X-Trello-Webhook": forged}, timeout=5)
    assert answer.status_code == 401
    other_url = trello.sign(body, url + "x", trello.APP_SECRET)  # signed for another URL
    answer = requests.post(url, data=body, headers={"X-Trello-Webhook": other_url}, timeout=5)
    assert answer.status_code == 401
    assert inbound_rows(connection) == []


def test_head_answers_200_only_for_a_known_connection(live, owner, trello_fake):
    connection = connect_trello(owner)
    assert requests.head(hook_url(connection, live), timeout=5).status_code == 200
    assert requests.head(live + "/webhooks/trello/no-such-path", timeout=5).status_code == 404


# -- Asana ----------------------------------------------------------------------------------
def connect_asana(owner) -> Connection:
    connection, _ = connections.create(
        owner.id,
        "asana",
        "Team project",
        {"token": asana.TOKEN},
        {"project_gid": asana.PROJECT, "done_section_gid": asana.SECTION_DONE},
    )
    connections.sync_webhook(connection)
    db.session.commit()
    return connection


def test_asana_from_connect_to_a_delivery_in_review(live, owner, bob, asana_fake, run_jobs):
    connection = connect_asana(owner)
    # the handshake reached the live app while the webhook was being created, and its
    # secret is stored sealed with the connection's credentials
    [hook] = asana_fake.webhooks.values()
    assert hook["target"] == hook_url(connection, live)
    db.session.refresh(connection)
    assert connection.credentials["hook_secret"] == hook["secret"] == asana_fake.handshakes[0]
    assert hook["secret"] not in connection.credentials_sealed

    job, dispatch = delegate_to(owner, bob, connection)
    run_jobs()
    db.session.refresh(dispatch)
    task = asana_fake.tasks[dispatch.external_id]
    assert task["assignee"]["gid"] == asana.BOB["gid"]
    assert "Fix typos and tighten the intro." in task["notes"]
    asana_fake.settle()

    assert asana_fake.complete(task["gid"]) == [202]
    run_jobs()
    db.session.refresh(job)
    delivery = db.session.scalars(select(Delivery).where(Delivery.job_id == job.id)).one()
    assert delivery.content == "Marked the task complete in Asana"
    assert job.status in (Status.DELIVERED, Status.IN_REVIEW)


def test_asana_heartbeats_and_comments(live, owner, bob, asana_fake, run_jobs):
    connection = connect_asana(owner)
    job, dispatch = delegate_to(owner, bob, connection)
    run_jobs()
    db.session.refresh(dispatch)
    asana_fake.settle()
    before = len(inbound_rows(connection))
    assert asana_fake.heartbeat() == [200]
    asana_fake.comment(dispatch.external_id, "Which tone?")
    run_jobs()
    rows = inbound_rows(connection)[before:]
    assert [r.status for r in rows] == ["ignored", "applied"]
    assert rows[0].error == "event type not used: heartbeat"


def test_asana_forged_signatures_are_refused(live, owner, asana_fake):
    connection = connect_asana(owner)
    url = hook_url(connection, live)
    body = b'{"events": []}'
    forged = asana.sign(body, "not the secret")
    answer = requests.post(url, data=body, headers={"X-Hook-Signature": forged}, timeout=5)
    assert answer.status_code == 401
    assert requests.post(url, data=body, timeout=5).status_code == 401  # no signature
    assert inbound_rows(connection) == []


def test_a_handshake_for_a_connection_with_a_secret_is_refused(live, owner, asana_fake):
    connection = connect_asana(owner)
    url = hook_url(connection, live)
    established = asana_fake.handshakes[0]
    answer = requests.post(url, data=b"", headers={"X-Hook-Secret": "attacker"}, timeout=5)
    assert answer.status_code == 403
    assert "X-Hook-Secret" not in answer.headers
    db.session.refresh(connection)
    assert connection.credentials["hook_secret"] == established
    # events signed with the established secret still verify; the attacker's do not
    body = b'{"events": []}'
    signed = {"X-Hook-Signature": asana.sign(body, established)}
    assert requests.post(url, data=body, headers=signed, timeout=5).status_code == 200
    forged = {"X-Hook-Signature": asana.sign(b'{"events": [] }', "attacker")}
    assert requests.post(url, data=b'{"events": [] }', headers=forged, timeout=5).status_code == 401


def test_registering_again_opens_the_window_for_a_new_secret(live, owner, asana_fake):
    connection = connect_asana(owner)
    asana_fake.webhooks.clear()  # the webhook was deleted at Asana: registering makes a new one
    ok, message = connections.check(connection)
    db.session.commit()
    assert ok, message
    db.session.refresh(connection)
    assert len(asana_fake.handshakes) == 2
    assert connection.credentials["hook_secret"] == asana_fake.handshakes[1]
    # and the window closed behind it
    answer = requests.post(hook_url(connection, live), headers={"X-Hook-Secret": "x"}, timeout=5)
    assert answer.status_code == 403


def test_trello_an_authentic_body_without_an_action_is_a_400_stored_invalid(
    live, owner, trello_fake
):
    connection = connect_trello(owner)
    url = hook_url(connection, live)
    body = b'{"model": {"id": "board"}}'
    answer = requests.post(
        url, data=body, headers={"X-Trello-Webhook": trello.sign(body, url)}, timeout=5
    )
    assert answer.status_code == 400
    assert [r.status for r in inbound_rows(connection)] == ["invalid"]
