"""POST /webhooks/<adapter>: 401, 400, 404, 413, duplicates, and what gets stored."""

from __future__ import annotations

import time

import pytest
from dispatch.helpers import signed_webhook

from dispatcher.extensions import db
from dispatcher.models import InboundEvent
from dispatcher.queues import INBOUND, get_queue

URL = "/webhooks/sandbox"


def post(client, headers, body, url=URL):
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


def test_malformed_json_is_400_stored_for_inspection_and_stays_400(client):
    headers, body = signed_webhook("", "", body=b'{"id": "evt_1", "type": ', msg_id="msg_bad")
    response = post(client, headers, body)
    assert response.status_code == 400 and "not JSON" in response.json["detail"]
    [row] = stored()
    assert row.status == "invalid" and "not JSON" in row.error and row.body.startswith('{"id"')
    assert post(client, headers, body).status_code == 400  # a redelivery: the same answer
    assert len(stored()) == 1
    assert get_queue(INBOUND).get_job_ids() == []


def test_an_unknown_event_type_is_400_and_stored(client):
    headers, body = signed_webhook("order.exploded", "ord_1")
    response = post(client, headers, body)
    assert response.status_code == 400
    assert "unknown event type: order.exploded" in response.json["detail"]
    [row] = stored()
    assert row.status == "invalid" and "order.exploded" in row.error


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


def test_a_good_webhook_costs_one_insert_and_no_reload(client):
    """Issue 12: the intake writes the row once and reads nothing back after the commit."""
    from sqlalchemy import event

    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        statements.append(" ".join(statement.split()).upper())

    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_once")
    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = post(client, headers, body)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 202
    touching = [s.split(" ")[0] for s in statements if "INBOUND_EVENTS" in s]
    assert touching == ["INSERT"]
    assert response.get_json()["id"] == stored()[0].id
