"""The contract every registered adapter must keep, each run against its own fake platform
(tests/fakes/contract.py): bad signatures and stale timestamps rejected, unknown statuses
mapped to UNKNOWN, the raw payload kept, the idempotency key honoured."""

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
    payload = json.loads(body)
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
