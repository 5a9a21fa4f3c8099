"""POST /webhooks/<adapter>/<connection path>: 401, 400, 404, 410, 413, duplicates, ignored
event types, per-connection secrets, and what gets stored."""

from __future__ import annotations

import base64
import time

import pytest
from dispatch.helpers import hook_url, make_owner, signed_webhook
from fakes.connections import connect_sandbox

from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.models import InboundEvent
from dispatcher.queues import INBOUND, get_queue

BOB_SECRET = "whsec_" + base64.b64encode(b"bob's own secret for his account").decode()


def post(client, headers, body, url=None):
    url = url or hook_url()
    return client.post(url, data=body, headers=headers)


def stored() -> list[InboundEvent]:
    return db.session.query(InboundEvent).order_by(InboundEvent.id).all()


def test_a_good_webhook_is_stored_and_queued(client):
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_a")
    response = post(client, headers, body)
    assert response.status_code == 202
    [row] = stored()
    assert (row.event_id, row.status) == ("msg_a", "received")
    assert get_queue(INBOUND).get_job_ids() == [f"inbound-{row.id}"]


def test_a_duplicate_is_a_no_op(client):
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_a")
    assert post(client, headers, body).status_code == 202
    again = post(client, headers, body)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert len(stored()) == 1
    assert len(get_queue(INBOUND).get_job_ids()) == 1


@pytest.mark.parametrize(
    ("forge", "skew"),
    [
        ({"secret": "whsec_" + "d3Jvbmcgc2VjcmV0IGZvciB0ZXN0cw=="}, None),
        ({}, -600),
        ({}, 600),
    ],
    ids=["wrong secret", "too old", "too new"],
)
def test_bad_signatures_and_stale_timestamps_are_401_and_not_stored(client, forge, skew):
    if skew is not None:  # from the time the test runs, not when it was collected
        forge = {**forge, "timestamp": int(time.time()) + skew}
    headers, body = signed_webhook("order.taken", "ord_1", **forge)
    response = post(client, headers, body)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert stored() == []


def test_an_altered_body_is_401(client):
    headers, body = signed_webhook("order.taken", "ord_1")
    assert post(client, headers, body.replace(b"ord_1", b"ord_2")).status_code == 401


def test_missing_signature_headers_are_401(client):
    assert post(client, {"content-type": "application/json"}, b"{}").status_code == 401


def test_unknown_adapter_is_404(client):
    headers, body = signed_webhook("order.taken", "ord_1")
    response = post(client, headers, body, url="/webhooks/nosuch")
    assert response.status_code == 404 and "nosuch" in response.json["detail"]
    response = post(client, headers, body, url="/webhooks/nosuch/abc")
    assert response.status_code == 404


def test_an_unknown_connection_path_is_404_and_not_stored(client):
    headers, body = signed_webhook("order.taken", "ord_1")
    response = post(client, headers, body, url="/webhooks/sandbox/not-a-connection")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert stored() == []


def test_the_old_per_adapter_url_is_gone_with_a_clear_problem(client):
    headers, body = signed_webhook("order.taken", "ord_1")
    response = post(client, headers, body, url="/webhooks/sandbox")
    assert response.status_code == 410
    assert "/webhooks/sandbox/<connection path>" in response.json["detail"]
    assert stored() == []


def test_one_connections_secret_is_refused_on_another(client, owner):
    bobs = connect_sandbox(make_owner("bob@example.com").id, secret=BOB_SECRET)
    bob_url = connections.webhook_path(bobs)
    headers, body = signed_webhook("order.taken", "ord_1")  # signed with Ann's secret
    assert post(client, headers, body, url=bob_url).status_code == 401
    assert stored() == []
    headers, body = signed_webhook("order.taken", "ord_1", secret=BOB_SECRET, msg_id="msg_b")
    assert post(client, headers, body, url=bob_url).status_code == 202
    assert post(client, headers, body).status_code == 401  # Bob's secret on Ann's URL
    [row] = stored()
    assert (row.connection_id, row.event_id) == (bobs.id, "msg_b")


def test_the_same_event_id_on_two_connections_is_two_events(client, owner):
    bobs = connect_sandbox(make_owner("bob@example.com").id, secret=BOB_SECRET)
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_same")
    assert post(client, headers, body).status_code == 202
    headers, body = signed_webhook("order.taken", "ord_1", secret=BOB_SECRET, msg_id="msg_same")
    assert post(client, headers, body, url=connections.webhook_path(bobs)).status_code == 202
    assert len(stored()) == 2


def test_malformed_json_is_400_stored_for_inspection_and_stays_400(client):
    headers, body = signed_webhook("", "", body=b'{"id": "evt_1", "type": ', msg_id="msg_bad")
    response = post(client, headers, body)
    assert response.status_code == 400 and "not JSON" in response.json["detail"]
    [row] = stored()
    assert row.status == "invalid" and "not JSON" in row.error and row.body.startswith('{"id"')
    assert post(client, headers, body).status_code == 400  # a redelivery: the same answer
    assert len(stored()) == 1
    assert get_queue(INBOUND).get_job_ids() == []


def test_an_authentic_event_of_an_unknown_type_is_2xx_and_stored_as_ignored(client):
    headers, body = signed_webhook("order.exploded", "ord_1", msg_id="msg_new_kind")
    response = post(client, headers, body)
    assert response.status_code == 200 and response.json["status"] == "ignored"
    [row] = stored()
    assert row.status == "ignored" and "order.exploded" in row.error
    assert get_queue(INBOUND).get_job_ids() == []  # nothing to apply
    again = post(client, headers, body)  # a redelivery: answered 2xx again, stored once
    assert again.status_code == 200 and len(stored()) == 1


def test_an_event_missing_fields_is_400(client):
    headers, body = signed_webhook("", "", body=b'{"id": "evt_1", "type": "order.taken"}')
    response = post(client, headers, body)
    assert response.status_code == 400 and "created_at" in response.json["detail"]


def test_a_body_over_the_limit_is_413_and_not_read(app, client):
    limit = app.config["SETTINGS"].webhook_max_bytes
    headers, body = signed_webhook("", "", body=b'{"pad": "' + b"x" * limit + b'"}')
    response = post(client, headers, body)
    assert response.status_code == 413
    assert str(limit) in response.json["detail"]
    assert stored() == []


def test_secret_headers_are_not_stored(client):
    headers, body = signed_webhook("order.taken", "ord_1")
    headers["Authorization"] = "Bearer secret"
    assert post(client, headers, body).status_code == 202
    assert "authorization" not in stored()[0].headers


@pytest.fixture
def csrf_client(app, app_config):
    """A client of a second app, as it runs in production: CSRF protection on (the `app`
    fixture, with CSRF off, keeps the database and Redis it shares set up and cleaned)."""
    from dispatcher import create_app

    live = create_app({**app_config, "extra": {}})
    assert live.config["WTF_CSRF_ENABLED"] is True
    yield live.test_client()
    with live.app_context():
        db.session.remove()
        db.engine.dispose()


def test_the_webhook_route_is_exempt_from_csrf(csrf_client):
    # CSRF is on: a form POST without a token is refused before any view runs
    refused = csrf_client.post("/goals", data={"title": "x"})
    assert refused.status_code == 400
    assert "CSRF" in refused.get_data(as_text=True)
    # the webhook gets past CSRF to the signature check, which decides
    unsigned = csrf_client.post(
        hook_url(), data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    assert unsigned.get_json()["title"] == "Signature rejected"
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_csrf")
    assert post(csrf_client, headers, body).status_code == 202
    assert [row.event_id for row in stored()] == ["msg_csrf"]


def test_the_old_public_default_sandbox_secret_opens_nothing(client):
    public = "whsec_ZGlzcGF0Y2hlci1zYW5kYm94LXNlY3JldC0wMDE="  # shipped in settings before
    headers, body = signed_webhook("order.taken", "ord_1", secret=public)
    assert post(client, headers, body, url="/webhooks/sandbox").status_code == 410
    assert post(client, headers, body).status_code == 401
    assert stored() == []


def test_a_good_webhook_costs_one_insert_and_no_reload(client):
    """Issue 12: the intake writes the row once and reads nothing back after the commit."""
    from sqlalchemy import event

    from dispatcher.inbound.intake_connection import intake_engine

    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()).upper())

    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_once")
    engines = [db.engine, intake_engine()]  # the app's, and intake's own (autocommit)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        response = post(client, headers, body)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 202
    touching = [s.split(" ")[0] for s in statements if "INBOUND_EVENTS" in s]
    assert touching == ["INSERT"]
    assert response.get_json()["id"] == stored()[0].id
