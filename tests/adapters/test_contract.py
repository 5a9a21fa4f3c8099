"""The contract every registered adapter must keep, each run against its own fake platform
(tests/fakes/contract.py): bad signatures and stale timestamps rejected, unknown statuses
mapped to UNKNOWN, the raw payload kept, the idempotency key honoured; for polled adapters,
stable event ids across polls, unknown statuses as UNKNOWN, the platform's item kept."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fakes.contract import CONTRACT_FAKES

from adapters.base import Capability, EventKind, discover
from dispatcher.errors import SignatureError

ADAPTERS = sorted(discover())
WRONG_SECRET = "whsec_" + base64.b64encode(b"not the secret the platform uses").decode()


@pytest.fixture(params=ADAPTERS)
def fake(request, tmp_path):
    name = request.param
    if name not in CONTRACT_FAKES:
        pytest.fail(f"adapter {name!r} has no contract fake: add one to tests/fakes/contract.py")
    with CONTRACT_FAKES[name](tmp_path) as running:
        assert running.adapter.name == name
        yield running


def needs(fake, capability: Capability) -> None:
    if not fake.adapter.supports(capability):
        pytest.skip(f"{fake.adapter.name} does not declare {capability}")


def test_every_adapter_declares_itself():
    for name, cls in discover().items():
        assert cls.name == name
        assert cls.title
        assert all(isinstance(c, Capability) for c in cls.capabilities)
        assert isinstance(cls.secret_settings, tuple)


def test_a_signed_event_verifies_and_parses(fake):
    needs(fake, Capability.WEBHOOKS)
    headers, body = fake.signed_event(fake.known_status, "ord_contract")
    fake.adapter.verify(headers, body)
    event_id = fake.adapter.event_id(headers, body)
    events = fake.adapter.parse(headers, body)
    assert events, "a verified event must parse into at least one event"
    assert all(e.kind != EventKind.UNKNOWN for e in events)
    assert all(e.event_id for e in events)
    assert event_id
    assert all(e.occurred_at.tzinfo is not None for e in events)


def test_bad_signature_is_rejected(fake):
    needs(fake, Capability.WEBHOOKS)
    headers, body = fake.signed_event(fake.known_status, "ord_contract", secret=WRONG_SECRET)
    with pytest.raises(SignatureError):
        fake.adapter.verify(headers, body)
    headers, body = fake.signed_event(fake.known_status, "ord_contract")
    with pytest.raises(SignatureError):
        fake.adapter.verify(headers, body + b" ")


def test_stale_timestamp_is_rejected(fake):
    needs(fake, Capability.WEBHOOKS)
    if not fake.signs_time:
        pytest.skip(f"{fake.adapter.name} signs no time: a replay is a duplicate instead")
    tolerance = fake.adapter.settings.webhook_tolerance_seconds
    headers, body = fake.signed_event(
        fake.known_status, "ord_contract", timestamp=int(time.time()) - tolerance - 60
    )
    with pytest.raises(SignatureError):
        fake.adapter.verify(headers, body)


def test_unknown_status_maps_to_unknown(fake):
    needs(fake, Capability.WEBHOOKS)
    headers, body = fake.signed_event(fake.unknown_status, "ord_contract")
    fake.adapter.verify(headers, body)
    events = fake.adapter.parse(headers, body)
    assert [e.kind for e in events] == [EventKind.UNKNOWN] * len(events) and events
    assert all(e.platform_status == fake.unknown_status for e in events)


def test_raw_payload_is_kept(fake):
    needs(fake, Capability.WEBHOOKS)
    headers, body = fake.signed_event(fake.known_status, "ord_contract")
    payload = fake.payload_of(body)
    for event in fake.adapter.parse(headers, body):
        # the whole body, or (for platforms that batch events) this event's own part of it
        assert _contains(payload, dict(event.raw)), f"{event.raw!r} is not from {payload!r}"


def _contains(payload, raw) -> bool:
    if payload == raw:
        return True
    if isinstance(payload, dict):
        return any(_contains(v, raw) for v in payload.values())
    if isinstance(payload, list):
        return any(_contains(v, raw) for v in payload)
    return False


def test_idempotency_key_is_honoured(fake):
    first = fake.adapter.dispatch(fake.job(), "contract-key-1")
    second = fake.adapter.dispatch(fake.job(), "contract-key-1")
    assert first.external_id == second.external_id
    assert fake.orders_under_key("contract-key-1") == 1
    if fake.adapter.supports(Capability.FIND):
        found = fake.adapter.find("contract-key-1")
        assert found is not None and found.external_id == first.external_id
        assert fake.adapter.find("contract-key-never-used") is None


# -- polling ----------------------------------------------------------------------------------
def _poll_all(adapter, external_id: str):
    events, cursor = [], None
    for _ in range(50):
        page = adapter.poll(external_id, cursor)
        events.extend(page.events)
        cursor = page.next_cursor
        if cursor is None:
            return events
    raise AssertionError("the poll cursor never ran out")


def _polled_order(fake, status: str):
    needs(fake, Capability.POLL)
    assert fake.make_change is not None, "a polled adapter's fake must provide make_change"
    order = fake.adapter.dispatch(fake.job(), f"contract-poll-{status}")
    fake.make_change(order.external_id, status)
    return order.external_id


def test_polled_changes_have_stable_ids(fake):
    external_id = _polled_order(fake, fake.known_status)
    first = _poll_all(fake.adapter, external_id)
    second = _poll_all(fake.adapter, external_id)
    assert first, "a change the platform shows must come back from poll"
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert len({e.event_id for e in first}) == len(first)
    assert all(e.external_id == external_id for e in first)
    assert all(e.occurred_at.tzinfo is not None for e in first)
    assert any(e.platform_status == fake.known_status for e in first)
    assert all(e.kind != EventKind.UNKNOWN for e in first)


def test_unknown_polled_status_maps_to_unknown(fake):
    external_id = _polled_order(fake, fake.unknown_status)
    events = [e for e in _poll_all(fake.adapter, external_id)]
    odd = [e for e in events if e.platform_status == fake.unknown_status]
    assert odd and all(e.kind == EventKind.UNKNOWN for e in odd)


def test_polled_raw_payload_is_kept(fake):
    external_id = _polled_order(fake, fake.known_status)
    for event in _poll_all(fake.adapter, external_id):
        assert isinstance(event.raw, dict) and event.raw
        assert event.platform_status in json.dumps(dict(event.raw))
