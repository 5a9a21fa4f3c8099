"""Issue 12, intake without a look-up statement per webhook: the connection of a webhook URL
is remembered per process, and the group's INSERT stores a row only if the connection still
has the version and path the request was verified against. A rotated secret, a deleted
connection and a redelivery must each still be answered as before, from the next webhook."""

from __future__ import annotations

import threading
import time

import pytest
from dispatch.helpers import hook_url, signed_webhook
from sqlalchemy import event, select

from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.inbound import group_commit
from dispatcher.inbound.intake_connection import intake_engine
from dispatcher.models import Connection, InboundEvent


@pytest.fixture
def connection(owner) -> Connection:
    return db.session.scalars(select(Connection).where(Connection.adapter == "sandbox")).one()


def post(client, url, secret=None, **kwargs):
    headers, body = (
        signed_webhook("order.taken", "ord_1", **kwargs)
        if secret is None
        else signed_webhook("order.taken", "ord_1", secret=secret, **kwargs)
    )
    return client.post(url, data=body, headers=headers)


def stored_ids() -> list[str]:
    db.session.expire_all()
    return [r.event_id for r in db.session.query(InboundEvent).order_by(InboundEvent.id)]


def test_a_rotated_secret_holds_from_the_next_webhook(client, connection):
    url = hook_url()
    assert post(client, url, msg_id="before").status_code == 202  # the URL is remembered now
    new_secret = connections.rotate_secret(connection)
    db.session.commit()

    old = post(client, url, msg_id="old_secret")
    assert old.status_code == 401
    assert post(client, url, secret=new_secret, msg_id="new_secret").status_code == 202
    assert stored_ids() == ["before", "new_secret"]


def test_a_deleted_connection_takes_no_more_webhooks(client, connection):
    url = hook_url()
    assert post(client, url, msg_id="before").status_code == 202
    connections.delete(connection)
    db.session.commit()

    assert post(client, url, msg_id="after").status_code == 404
    assert "after" not in stored_ids()


def test_a_redelivery_to_a_remembered_url_is_still_a_duplicate(client, connection):
    url = hook_url()
    assert post(client, url, msg_id="first").status_code == 202
    again = post(client, url, msg_id="first")
    assert again.status_code == 200
    assert again.get_json()["status"] == "duplicate"
    assert stored_ids() == ["first"]


def test_a_webhook_to_a_known_url_costs_one_statement(client, connection):
    """The look-up of the connection is not a statement of its own once the URL is known."""
    url = hook_url()
    db.session.commit()
    assert post(client, url, msg_id="warm").status_code == 202
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()).upper())

    engines = [db.engine, intake_engine()]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        assert post(client, url, msg_id="second").status_code == 202
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    assert [s.split(" ")[0] for s in statements] == ["INSERT"]


def test_a_connection_changed_while_its_webhook_waits_is_not_answered_as_stored(app, connection):
    """Verified against the connection as it was, then turned away by the INSERT after a
    rotation: nothing stored and a 503, so the sender delivers again (not a 2xx that would
    lose the event, nor a row verified with a secret no longer valid)."""
    url = hook_url()
    db.session.commit()
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="meanwhile")
    answers = []
    lane = group_commit._lane(app)
    with lane.hold_all():
        sender = threading.Thread(
            target=lambda: answers.append(app.test_client().post(url, data=body, headers=headers))
        )
        sender.start()
        deadline = time.monotonic() + 10
        while not lane.waiting:  # verified, and waiting for a writer
            assert time.monotonic() < deadline
            time.sleep(0.005)
        connections.rotate_secret(connection)
        db.session.commit()
    sender.join(timeout=20)
    assert answers[0].status_code == 503
    assert answers[0].headers["Retry-After"] == "1"
    assert "meanwhile" not in stored_ids()
