"""The sandbox's webhook sender against a real receiver on loopback: signatures, retries with
the same webhook-id, attempts recorded, duplicates and reordering on demand."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fakes.sandbox_fixture import SECRET, wait_until

from adapters import standard_webhooks
from dispatcher.errors import SignatureError
from dispatcher.sandbox import accounts, workers
from dispatcher.sandbox.market import Marketplace
from dispatcher.sandbox.options import SandboxOptions
from dispatcher.sandbox.sender import WebhookSender

FIELDS = {
    "title": "Logo sketch",
    "brief": "",
    "acceptance_criteria": [],
    "deliverable_kind": "text",
    "price_cents": 800,
    "currency": "EUR",
    "assignments": 1,
    "client_ref": "job-9",
    "due_date": None,
}


@pytest.fixture
def market(tmp_path):
    options = SandboxOptions(take_delay=0, deliver_delay=0, webhook_retry_delay=0.01, seed=3)
    market = Marketplace(tmp_path / "sandbox.db", options)
    yield market
    market.close()


@pytest.fixture(autouse=True)
def account(market) -> str:
    """An account that registered SECRET as its webhook secret."""
    created = accounts.create(market.store, "tests")
    accounts.set_webhook(market.store, created["id"], "", SECRET)
    return created["id"]


@pytest.fixture
def sender(market):
    sender = WebhookSender(market)
    yield sender
    sender.close()


def place(market, callback_url, key="k1", account_id=None, **overrides):
    if account_id is None:
        account_id = market.store.one("SELECT id FROM accounts ORDER BY created_at")["id"]
    fields = {**FIELDS, "callback_url": callback_url, **overrides}
    order, _ = market.create_order(key, fields, fields, account_id=account_id)
    return order["id"]


def drain(sender, rounds=20):
    """Run delivery passes far enough in the future that every retry is due."""
    for i in range(rounds):
        sender.send_due(now=time.time() + 1000 * (i + 1))


def bodies(receiver):
    return [json.loads(r.body) for r in receiver.requests]


def test_events_arrive_signed_and_identical_to_the_events_endpoint(
    market, sender, webhook_receiver
):
    order_id = place(market, webhook_receiver.url)
    workers.step(market)
    workers.step(market)
    assert sender.send_due() == 2
    received = webhook_receiver.wait_for(2)
    for request in received:
        assert request.headers["content-type"] == "application/json"
        standard_webhooks.verify(SECRET, request.headers, request.body)
        assert request.headers["webhook-id"] == json.loads(request.body)["id"]
    assert bodies(webhook_receiver) == market.events(order_id)
    assert [b["type"] for b in bodies(webhook_receiver)] == ["order.taken", "order.delivered"]
    stats = market.stats()
    assert (stats["webhooks_sent"], stats["webhooks_failed"], stats["webhooks_pending"]) == (
        2,
        0,
        0,
    )


def test_failures_are_retried_with_the_same_id_and_every_attempt_recorded(
    market, sender, webhook_receiver
):
    webhook_receiver.statuses = [500, 503]
    place(market, webhook_receiver.url)
    workers.step(market)
    drain(sender)
    received = webhook_receiver.wait_for(3)
    assert [r.headers["webhook-id"] for r in received] == [received[0].headers["webhook-id"]] * 3
    assert len({r.body for r in received}) == 1
    attempts = market.store.query("SELECT ok, status_code FROM webhook_attempts ORDER BY id")
    assert [(a["ok"], a["status_code"]) for a in attempts] == [(0, 500), (0, 503), (1, 204)]
    stats = market.stats()
    assert (stats["webhooks_sent"], stats["webhooks_failed"]) == (1, 2)


def test_backoff_waits_before_the_next_attempt(market, sender, webhook_receiver):
    market.set_options({"webhook_retry_delay": 60})
    webhook_receiver.statuses = [500]
    place(market, webhook_receiver.url)
    workers.step(market)
    sender.send_due()
    assert sender.send_due() == 0  # not due for a minute
    assert sender.send_due(now=time.time() + 61) == 1
    assert len(webhook_receiver.wait_for(2)) == 2


def test_unreachable_receiver_is_given_up_after_max_attempts(market, sender):
    market.set_options({"webhook_max_attempts": 3, "webhook_timeout": 0.5})
    place(market, "http://127.0.0.1:9/nobody-listens")
    workers.step(market)
    drain(sender)
    stats = market.stats()
    assert (stats["webhooks_failed"], stats["webhooks_abandoned"], stats["webhooks_sent"]) == (
        3,
        1,
        0,
    )
    errors = market.store.query("SELECT error FROM webhook_attempts")
    assert all("ConnectionError" in e["error"] for e in errors)


def test_duplicates_reuse_the_webhook_id(market, sender, webhook_receiver):
    market.set_options({"duplicate_webhooks": 1.0})
    place(market, webhook_receiver.url)
    workers.step(market)
    drain(sender)
    received = webhook_receiver.wait_for(2)
    assert len(received) == 2
    assert received[0].headers["webhook-id"] == received[1].headers["webhook-id"]
    assert market.stats()["webhooks_sent"] == 2


def test_reordering_sends_delivered_before_taken(market, sender, webhook_receiver):
    market.set_options({"reorder_webhooks": True})
    place(market, webhook_receiver.url)
    workers.step(market)
    assert sender.send_due() == 0  # the taken event is held: nothing later exists yet
    workers.step(market)
    assert sender.send_due() == 2
    types = [b["type"] for b in bodies(webhook_receiver)]
    assert types == ["order.delivered", "order.taken"]


def test_reordering_holds_no_longer_than_its_limit(market, sender, webhook_receiver):
    market.set_options({"reorder_webhooks": True, "reorder_max_hold": 5, "pause_workers": True})
    place(market, webhook_receiver.url)
    market.set_options({"pause_workers": False})
    workers.step(market)
    market.set_options({"pause_workers": True})
    assert sender.send_due() == 0
    assert sender.send_due(now=time.time() + 6) == 1


def test_orders_without_callback_send_nothing(market, sender):
    order_id = place(market, "")
    workers.step(market)
    assert sender.send_due() == 0
    assert len(market.events(order_id)) == 1


def test_running_sandbox_delivers_webhooks_by_itself(sandbox, webhook_receiver):
    fields = {**FIELDS, "callback_url": webhook_receiver.url}
    created = accounts.create(sandbox.market.store, "live")
    accounts.set_webhook(sandbox.market.store, created["id"], "", SECRET)
    sandbox.market.create_order("auto", fields, fields, account_id=created["id"])
    received = webhook_receiver.wait_for(2)
    assert [json.loads(r.body)["type"] for r in received[:2]] == [
        "order.taken",
        "order.delivered",
    ]
    wait_until(lambda: sandbox.stats()["webhooks_sent"] == 2)


def test_each_account_signs_with_its_own_secret_and_none_without_one(
    market, sender, webhook_receiver
):
    other_secret = "whsec_" + base64.b64encode(b"another account's own secret!!!!").decode()
    other = accounts.create(market.store, "other")["id"]
    accounts.set_webhook(market.store, other, "", other_secret)
    silent = accounts.create(market.store, "no secret")["id"]
    place(market, webhook_receiver.url, key="k-other", account_id=other)
    place(market, webhook_receiver.url, key="k-silent", account_id=silent)
    workers.step(market)
    sender.send_due()
    [request] = webhook_receiver.wait_for(1)
    standard_webhooks.verify(other_secret, request.headers, request.body)
    with pytest.raises(SignatureError):
        standard_webhooks.verify(SECRET, request.headers, request.body)
    failed = market.store.query("SELECT error FROM webhook_attempts WHERE ok = 0")
    assert failed and "no webhook secret" in failed[0]["error"]
