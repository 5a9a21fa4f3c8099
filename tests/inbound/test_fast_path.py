"""Issue 12, the webhook fast path: deliveries are served beside Flask's request handling,
and keep what a webhook needs of it (request id, security headers, metrics, problem details
for every error), while every other request and method still goes through Flask."""

from __future__ import annotations

import logging

import pytest
from dispatch.helpers import hook_url, signed_webhook
from flask import Flask

from dispatcher import create_app
from dispatcher.extensions import db
from dispatcher.inbound import fast_path
from dispatcher.models import InboundEvent
from dispatcher.ops import metrics


def post(client, url, msg_id="msg_1", **headers):
    signed, body = signed_webhook("order.taken", "ord_1", msg_id=msg_id)
    return client.post(url, data=body, headers={**signed, **headers})


def test_deliveries_skip_flasks_request_handling(app, client, owner, monkeypatch):
    """No request hook runs for a delivery (they open sessions, count limits, ...)."""
    ran: list[str] = []
    app.before_request_funcs.setdefault(None, []).append(lambda: ran.append("hook"))
    assert post(client, hook_url()).status_code == 202
    assert ran == []
    client.get("/login")  # a page still runs them
    assert ran == ["hook"]


def test_a_delivery_keeps_its_request_id_security_headers_and_metrics(client, owner):
    before = metrics.WEBHOOKS.labels("sandbox", "accepted")._value.get()
    answer = post(client, hook_url(), **{"X-Request-Id": "platform-req-42"})
    assert answer.status_code == 202
    assert answer.headers["X-Request-Id"] == "platform-req-42"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in answer.headers
    assert metrics.WEBHOOKS.labels("sandbox", "accepted")._value.get() == before + 1

    unsafe = post(client, hook_url(), msg_id="msg_2", **{"X-Request-Id": "bad id; forged"})
    assert unsafe.status_code == 202
    assert unsafe.headers["X-Request-Id"] != "bad id; forged"


def test_other_methods_and_urls_still_go_to_flask(client, owner):
    url = hook_url()
    assert client.head(url).status_code == 200  # Trello's check
    assert client.get(url).status_code == 405
    assert client.post("/webhooks/sandbox").status_code == 410  # the old per-adapter URL
    assert client.post(url + "/extra").status_code == 404


@pytest.fixture
def production_app(app_config):
    """An app that does not propagate errors, as gunicorn serves it."""
    app = create_app({**app_config, "testing": False})
    assert isinstance(app, Flask) and not app.testing
    yield app
    with app.app_context():
        db.engine.dispose()


def test_an_unexpected_error_is_a_500_problem_and_logged_not_a_trace(
    production_app, owner, monkeypatch, caplog
):
    url = hook_url()

    def broken(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fast_path, "take", broken)
    # the migrations' logging set-up disables loggers that existed before it ran
    monkeypatch.setattr(fast_path.log, "disabled", False)
    with caplog.at_level(logging.ERROR, logger="dispatcher.inbound.fast_path"):
        answer = post(production_app.test_client(), url)
    assert answer.status_code == 500
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["title"] == "Internal Server Error"
    assert "disk on fire" not in answer.get_data(as_text=True)
    assert "Traceback" not in answer.get_data(as_text=True)
    assert any("disk on fire" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert answer.headers["X-Frame-Options"] == "DENY"
    with production_app.app_context():
        assert db.session.query(InboundEvent).count() == 0


@pytest.mark.parametrize(
    ("kind", "times", "status", "outcome"),
    [("order.taken", 1, 202, "accepted"), ("order.taken", 2, 200, "duplicate"),
     ("order.exploded", 1, 200, "ignored")],
)  # fmt: skip
def test_a_json_answer_written_without_werkzeug_is_what_flask_would_send(
    app, client, owner, kind, times, status, outcome
):
    """The fast path writes its (dict, status) answers itself: the status line, headers and
    body must be what Flask's make_response and the app's header hooks would have sent."""
    signed, body = signed_webhook(kind, "ord_1", msg_id=f"same_{kind}")
    before = metrics.WEBHOOKS.labels("sandbox", outcome)._value.get()
    for _ in range(times):
        answer = client.post(hook_url(), data=body, headers={**signed, "X-Request-Id": "req-7"})
    assert (answer.status_code, answer.get_json()["status"]) == (status, outcome)
    assert metrics.WEBHOOKS.labels("sandbox", outcome)._value.get() == before + 1

    expected = app.make_response((answer.get_json(), status))
    expected.headers["X-Request-Id"] = "req-7"
    expected = app.extensions["dispatcher.security_headers"](expected)
    assert answer.status == expected.status
    assert sorted(answer.headers.items()) == sorted(expected.headers.items())
    assert answer.get_data() == expected.get_data()
