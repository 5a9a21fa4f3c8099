"""SandboxAdapter against the real sandbox marketplace over HTTP on loopback."""

from __future__ import annotations

import json
from datetime import date

import pytest
from fakes.sandbox_fixture import SECRET, make_settings, sandbox_account, wait_until

from adapters import standard_webhooks
from adapters.base import Capability, DeliveryRef, EventKind, JobSpec, discover
from adapters.sandbox import STATUS_MAP, SandboxAdapter
from dispatcher.errors import (
    AdapterError,
    PayloadError,
    RetryableAdapterError,
    SignatureError,
)


def job(**overrides) -> JobSpec:
    values = {
        "job_id": 42,
        "title": "Find 20 blogs that take guest posts",
        "brief": "Gardening niche, DA above 30",
        "acceptance_criteria": ("a sheet with 20 rows", "contact e-mail for each"),
        "deliverable_kind": "url",
        "price_cents": 1200,
        "currency": "USD",
        "assignments": 1,
        "due_date": date(2030, 6, 1),
        "callback_url": "",
    }
    values.update(overrides)
    return JobSpec(**values)


def order(sandbox, external_id):
    return sandbox.market.get_order(external_id)


def test_declares_itself_and_is_registered():
    assert discover()["sandbox"] is SandboxAdapter
    assert SandboxAdapter.name == "sandbox"
    assert SandboxAdapter.secret_settings == ()  # nothing global: every secret is per connection
    assert (SandboxAdapter.credential_fields, SandboxAdapter.option_fields) == (
        ("api_key",),
        ("base_url", "polling"),
    )
    assert {Capability.WEBHOOKS, Capability.POLL, Capability.FIND} <= SandboxAdapter.capabilities
    assert set(STATUS_MAP.values()) <= set(EventKind) - {EventKind.UNKNOWN}


def test_dispatch_places_the_order_with_everything_the_platform_needs(sandbox, sandbox_adapter):
    receipt = sandbox_adapter.dispatch(job(), "key-a")
    assert receipt.external_id.startswith("ord_")
    assert receipt.url == f"{sandbox.base_url}/orders/{receipt.external_id}"
    assert receipt.raw["idempotency_key"] == "key-a"
    placed = order(sandbox, receipt.external_id)
    assert placed["client_ref"] == "job-42"
    assert placed["acceptance_criteria"] == ["a sheet with 20 rows", "contact e-mail for each"]
    assert (placed["price_cents"], placed["currency"], placed["due_date"]) == (
        1200,
        "USD",
        "2030-06-01",
    )


def test_same_key_twice_is_one_order(sandbox, sandbox_adapter):
    first = sandbox_adapter.dispatch(job(), "key-b")
    second = sandbox_adapter.dispatch(job(), "key-b")
    assert first.external_id == second.external_id
    stats = sandbox.stats()
    assert stats["orders"] == 1 and stats["orders_by_key"] == {"key-b": 1}


def test_created_then_503_is_retryable_and_find_adopts_the_order(sandbox, sandbox_adapter):
    sandbox.control(fail_after_create_rate=1.0)
    with pytest.raises(RetryableAdapterError) as caught:
        sandbox_adapter.dispatch(job(), "key-c")
    assert caught.value.status == 503
    found = sandbox_adapter.find("key-c")
    assert found is not None and found.external_id.startswith("ord_")
    sandbox.control(fail_after_create_rate=0.0)
    assert sandbox_adapter.dispatch(job(), "key-c").external_id == found.external_id
    assert sandbox.stats()["orders"] == 1
    assert sandbox.stats()["duplicate_orders"] == 0


def test_503_before_creating_is_retryable_and_find_finds_nothing(sandbox, sandbox_adapter):
    sandbox.control(fail_rate=1.0)
    with pytest.raises(RetryableAdapterError):
        sandbox_adapter.dispatch(job(), "key-d")
    assert sandbox_adapter.find("key-d") is None
    assert sandbox.stats()["orders"] == 0


def test_429_is_retryable_with_the_platforms_retry_after(sandbox, sandbox_adapter):
    sandbox.control(rate_limit_rate=1.0)
    with pytest.raises(RetryableAdapterError) as caught:
        sandbox_adapter.dispatch(job(), "key-e")
    assert (caught.value.status, caught.value.retry_after) == (429, 1.0)


def test_422_is_permanent_with_the_platforms_reason(sandbox, sandbox_adapter):
    with pytest.raises(AdapterError) as caught:
        sandbox_adapter.dispatch(job(currency="dollars"), "key-f")
    assert not isinstance(caught.value, RetryableAdapterError)
    assert caught.value.status == 422
    assert "currency must be a three-letter ISO 4217 code" in str(caught.value)

    sandbox_adapter.dispatch(job(), "key-g")
    with pytest.raises(AdapterError) as caught:
        sandbox_adapter.dispatch(job(price_cents=1), "key-g")
    assert not isinstance(caught.value, RetryableAdapterError)
    assert "idempotency key reused with a different request" in str(caught.value)


def test_stall_past_the_read_timeout_is_retryable_and_the_order_is_found(sandbox, tmp_path):
    adapter = SandboxAdapter(
        make_settings(tmp_path, sandbox_url=sandbox.base_url, http_read_timeout=0.15),
        credentials={"api_key": sandbox_account(sandbox.base_url)},
    )
    sandbox.control(stall_rate=1.0, stall_seconds=0.5)
    with pytest.raises(RetryableAdapterError, match="Timeout"):
        adapter.dispatch(job(), "key-h")
    assert adapter.find("key-h") is not None
    adapter.session.close()


def test_unreachable_platform_is_retryable(tmp_path):
    adapter = SandboxAdapter(make_settings(tmp_path, sandbox_url="http://127.0.0.1:9"))
    with pytest.raises(RetryableAdapterError, match="ConnectionError"):
        adapter.dispatch(job(), "key-i")


def test_cancel(sandbox, sandbox_adapter):
    sandbox.control(pause_workers=True)
    receipt = sandbox_adapter.dispatch(job(), "key-j")
    sandbox_adapter.cancel(receipt.external_id)
    sandbox_adapter.cancel(receipt.external_id)  # twice is fine
    assert order(sandbox, receipt.external_id)["status"] == "cancelled"
    with pytest.raises(AdapterError) as caught:
        sandbox_adapter.cancel("ord_unknown")
    assert caught.value.status == 404


def test_poll_normalizes_events(sandbox, sandbox_adapter):
    receipt = sandbox_adapter.dispatch(job(), "key-k")
    events = wait_until(lambda: len(sandbox_adapter.poll(receipt.external_id).events) == 2)
    events = sandbox_adapter.poll(receipt.external_id).events
    taken, delivered = events
    assert (taken.kind, delivered.kind) == (EventKind.TAKEN, EventKind.DELIVERED)
    assert {e.external_id for e in events} == {receipt.external_id}
    assert all(e.occurred_at.tzinfo is not None for e in events)
    assert taken.worker.startswith("wrk_") and taken.delivery_id is None
    assert delivered.delivery_id.startswith("sub_")
    assert delivered.content == "Delivered: Find 20 blogs that take guest posts"
    assert delivered.url.endswith(f"/deliveries/{delivered.delivery_id}")
    assert delivered.platform_status == "order.delivered"
    assert delivered.raw == sandbox.market.events(receipt.external_id)[1]


def test_review_round_trip(sandbox, sandbox_adapter):
    receipt = sandbox_adapter.dispatch(job(assignments=3), "key-l")
    oid = receipt.external_id
    wait_until(lambda: len(order(sandbox, oid)["submissions"]) == 3)
    subs = [s["id"] for s in order(sandbox, oid)["submissions"]]

    sandbox_adapter.accept(DeliveryRef(oid, subs[0]), 1200)
    sandbox_adapter.accept(DeliveryRef(oid, subs[0]), 1200)  # a retried call pays nothing more
    sandbox_adapter.reject(DeliveryRef(oid, subs[1]), "not gardening blogs")
    sandbox_adapter.request_revision(DeliveryRef(oid, subs[2]), "add contact e-mails")
    revised = wait_until(lambda: len(order(sandbox, oid)["submissions"]) == 4)
    assert revised
    statuses = [s["status"] for s in order(sandbox, oid)["submissions"]]
    assert statuses == ["accepted", "rejected", "revision_requested", "submitted"]
    stats = sandbox.stats()
    assert (stats["payments"], stats["double_payments"]) == (1, 0)

    kinds = [e.kind for e in sandbox_adapter.poll(oid).events]
    assert kinds.count(EventKind.DELIVERED) == 4 and kinds.count(EventKind.PAID) == 1

    with pytest.raises(AdapterError) as caught:  # a reviewed submission cannot be re-reviewed
        sandbox_adapter.accept(DeliveryRef(oid, subs[1]), 1200)
    assert caught.value.status == 409


def test_decision_reads_what_a_submission_holds(sandbox, sandbox_adapter):
    receipt = sandbox_adapter.dispatch(job(assignments=4), "key-d")
    oid = receipt.external_id
    wait_until(lambda: len(order(sandbox, oid)["submissions"]) == 4)
    paid, rejected, revised, open_ = (
        DeliveryRef(oid, s["id"]) for s in order(sandbox, oid)["submissions"]
    )
    sandbox.control(pause_workers=True)  # no redelivery after the revision
    sandbox_adapter.accept(paid, 900)
    sandbox_adapter.reject(rejected, "off topic")
    sandbox_adapter.request_revision(revised, "more sources")

    held = sandbox_adapter.decision(paid)
    assert (held.decision, held.payout_cents, held.raw["status"]) == ("accept", 900, "accepted")
    assert sandbox_adapter.decision(rejected).decision == "reject"
    assert sandbox_adapter.decision(revised).decision == "revise"
    assert sandbox_adapter.decision(open_) is None  # not reviewed yet
    with pytest.raises(AdapterError) as caught:
        sandbox_adapter.decision(DeliveryRef(oid, "sub_nope"))
    assert caught.value.status == 404
    # the same decision again is a no-op the sandbox counts, not a second review
    sandbox_adapter.reject(rejected, "off topic")
    assert sandbox.stats()["counters"]["review_replays"] == 1


def test_webhooks_from_the_sandbox_verify_and_parse(sandbox, sandbox_adapter, webhook_receiver):
    receipt = sandbox_adapter.dispatch(job(callback_url=webhook_receiver.url), "key-m")
    received = webhook_receiver.wait_for(2)
    parsed = []
    for request in received:
        sandbox_adapter.verify(request.headers, request.body)
        assert (
            sandbox_adapter.event_id(request.headers, request.body)
            == (request.headers["webhook-id"])
        )
        parsed.extend(sandbox_adapter.parse(request.headers, request.body))
    assert [e.kind for e in parsed] == [EventKind.TAKEN, EventKind.DELIVERED]
    assert {e.external_id for e in parsed} == {receipt.external_id}
    assert parsed[1].raw == json.loads(received[1].body)
    # a byte changed in transit fails verification
    tampered = received[1].body.replace(b"Delivered", b"Delivered!")
    with pytest.raises(SignatureError):
        sandbox_adapter.verify(received[1].headers, tampered)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"type": "order.taken", "created_at": "2030-01-01T00:00:00Z", "data": {}}', "no id"),
        (b'{"id": "e", "type": "order.taken", "created_at": "2030-01-01T00:00:00Z"}', "no data"),
        (
            b'{"id": "e", "type": "order.taken", "created_at": "2030-01-01", "data": {}}',
            "no data.order_id",
        ),
        (
            b'{"id": "e", "type": "order.taken", "created_at": "soon", "data": {"order_id": "o"}}',
            "not ISO-8601",
        ),
    ],
)
def test_malformed_payloads_raise_payload_error_with_a_reason(sandbox_adapter, body, reason):
    with pytest.raises(PayloadError, match=reason):
        sandbox_adapter.parse({}, body)


def test_naive_timestamps_are_read_as_utc(sandbox_adapter):
    body = b'{"id": "e", "type": "order.taken", "created_at": "2030-01-01T00:00:00", '
    body += b'"data": {"order_id": "o"}}'
    (event,) = sandbox_adapter.parse({}, body)
    assert event.occurred_at.utcoffset().total_seconds() == 0


def test_event_id_requires_the_header(sandbox_adapter):
    assert sandbox_adapter.event_id({"Webhook-Id": "evt_1"}, b"") == "evt_1"
    with pytest.raises(SignatureError, match="missing webhook-id"):
        sandbox_adapter.event_id({}, b"")


def test_the_base_url_option_wins_over_settings_and_a_wrong_key_is_refused(sandbox, tmp_path):
    key = sandbox_account(sandbox.base_url)
    adapter = SandboxAdapter(
        make_settings(tmp_path, sandbox_url="http://127.0.0.1:9"),
        credentials={"api_key": key},
        options={"base_url": sandbox.base_url},
    )
    assert "tests" in adapter.check()
    receipt = adapter.dispatch(job(), "key-option")
    assert order(sandbox, receipt.external_id)["status"] == "open"
    wrong = SandboxAdapter(
        make_settings(tmp_path, sandbox_url=sandbox.base_url), credentials={"api_key": "sbx_no"}
    )
    with pytest.raises(AdapterError) as caught:
        wrong.check()
    assert caught.value.status == 401 and "sbx_no" not in str(caught.value)
    adapter.session.close()
    wrong.session.close()


def test_verify_needs_the_connections_secret(tmp_path):
    adapter = SandboxAdapter(make_settings(tmp_path))  # a connection without a secret
    headers = standard_webhooks.sign(SECRET, "msg_1", None, b"{}")
    with pytest.raises(SignatureError):
        adapter.verify(headers, b"{}")
