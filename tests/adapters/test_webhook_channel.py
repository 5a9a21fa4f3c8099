"""The webhook teammate channel, with the `standardwebhooks` package from PyPI as the
independent peer both ways: a loopback endpoint verifies our posts with
``Webhook(secret).verify``, and their answers are signed with ``Webhook(secret).sign``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fakes.sandbox_fixture import make_settings
from fakes.teammate_endpoint import TeammateEndpoint, callback

from adapters.base import EventKind, JobSpec, Notice, PersonRef
from adapters.standard_webhooks import generate_secret
from adapters.webhook_channel import WebhookChannelAdapter
from dispatcher.errors import AdapterError, PayloadError, RetryableAdapterError, SignatureError
from dispatcher.security.outbound import UnsafeURL

SECRET = generate_secret(32)
LINK = "https://dispatcher.example/t/xyz789"


@pytest.fixture
def endpoint():
    running = TeammateEndpoint(SECRET).start()
    yield running
    running.stop()


@pytest.fixture
def settings(endpoint, tmp_path):
    return make_settings(tmp_path, outbound_allowlist=(endpoint.hostport,))


@pytest.fixture
def adapter(settings):
    made = WebhookChannelAdapter(settings, credentials={"webhook_secret": SECRET})
    yield made
    made.session.close()


def job(endpoint_url: str, **overrides) -> JobSpec:
    values = dict(
        job_id=12,
        title="Fix the booking form",
        brief="The date picker breaks on Safari.",
        acceptance_criteria=("works on Safari 17", "no console errors"),
        deliverable_kind="url",
        price_cents=12000,
        currency="USD",
        due_date=date(2030, 5, 1),
        person=PersonRef(name="Dev Co", email="dev@example.com", endpoint_url=endpoint_url),
        submission_url=LINK,
    )
    values.update(overrides)
    return JobSpec(**values)


def test_the_job_reaches_their_endpoint_signed_and_complete(adapter, endpoint):
    receipt = adapter.dispatch(job(endpoint.url), "dsp_abc")
    assert endpoint.refused == []
    [event] = endpoint.received  # verified by the standardwebhooks package
    assert event["type"] == "job.assigned"
    assert datetime.fromisoformat(event["timestamp"]).tzinfo is not None
    assert event["data"] == {
        "order_id": receipt.external_id,
        "job_id": 12,
        "title": "Fix the booking form",
        "brief": "The date picker breaks on Safari.",
        "acceptance_criteria": ["works on Safari 17", "no console errors"],
        "deliverable_kind": "url",
        "due_date": "2030-05-01",
        "pay": {"amount_cents": 12000, "currency": "USD"},
        "submission_url": LINK,
        "person": {"name": "Dev Co", "email": "dev@example.com"},
    }


def test_a_retry_has_the_same_webhook_id_so_they_can_deduplicate(adapter, endpoint):
    first = adapter.dispatch(job(endpoint.url), "dsp_same")
    second = adapter.dispatch(job(endpoint.url), "dsp_same")
    adapter.dispatch(job(endpoint.url), "dsp_other")
    assert first.external_id == second.external_id
    assert endpoint.ids[0] == endpoint.ids[1] != endpoint.ids[2]
    assert len(endpoint.events) == 2


def test_the_connections_endpoint_is_used_when_the_person_has_none(settings, endpoint):
    adapter = WebhookChannelAdapter(
        settings, credentials={"webhook_secret": SECRET}, options={"endpoint_url": endpoint.url}
    )
    adapter.dispatch(job("", person=None), "k")
    assert len(endpoint.received) == 1 and endpoint.received[0]["data"]["person"] is None


def test_no_endpoint_at_all_is_a_clear_permanent_failure(adapter):
    with pytest.raises(AdapterError, match="no endpoint") as refused:
        adapter.dispatch(job(""), "k")
    assert not isinstance(refused.value, RetryableAdapterError)


@pytest.mark.parametrize(
    ("kind", "type_"),
    [("revision", "job.revision_requested"), ("answer", "job.answer"),
     ("reminder", "job.reminder"), ("accepted", "job.accepted")],
)  # fmt: skip
def test_notices_go_the_same_way(adapter, endpoint, kind, type_):
    person = PersonRef(name="Dev Co", endpoint_url=endpoint.url)
    notice = Notice(key=f"outbox-{kind}", kind=kind, person=person, subject="About your job",
                    text="Details here.", job_id=12, external_id="webhook-dsp_abc",
                    submission_url=LINK)  # fmt: skip
    adapter.notify(notice)
    adapter.notify(notice)  # the outbox retried: same id again
    assert [e["type"] for e in endpoint.received] == [type_, type_]
    assert len(set(endpoint.ids)) == 1
    data = endpoint.received[0]["data"]
    assert (data["order_id"], data["text"], data["submission_url"]) == (
        "webhook-dsp_abc", "Details here.", LINK)  # fmt: skip


def test_their_refusals_are_classified(adapter, endpoint):
    endpoint.statuses = [503, 410]
    with pytest.raises(RetryableAdapterError):
        adapter.dispatch(job(endpoint.url), "k")
    with pytest.raises(AdapterError) as gone:
        adapter.dispatch(job(endpoint.url), "k")
    assert gone.value.status == 410 and not isinstance(gone.value, RetryableAdapterError)


def test_a_wrongly_signed_post_is_refused_by_the_independent_peer(settings, endpoint):
    adapter = WebhookChannelAdapter(settings, credentials={"webhook_secret": generate_secret()})
    with pytest.raises(AdapterError) as refused:
        adapter.dispatch(job(endpoint.url), "k")
    assert refused.value.status == 401 and endpoint.received == []


def test_an_endpoint_that_is_not_allowed_is_never_called(endpoint, tmp_path):
    adapter = WebhookChannelAdapter(make_settings(tmp_path), credentials={"webhook_secret": SECRET})
    with pytest.raises(AdapterError, match="loopback"):
        adapter.dispatch(job(endpoint.url), "k")
    assert endpoint.received == [] and endpoint.refused == []


def test_the_endpoint_option_is_checked_when_a_connection_is_saved(settings, endpoint, tmp_path):
    with pytest.raises(UnsafeURL) as refused:
        WebhookChannelAdapter.validate_connection(
            make_settings(tmp_path), {}, {"endpoint_url": endpoint.url}
        )
    assert refused.value.field == "endpoint_url"
    WebhookChannelAdapter.validate_connection(settings, {}, {"endpoint_url": endpoint.url})
    WebhookChannelAdapter.validate_connection(settings, {}, {})  # people may carry their own


# -- their answers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type_", "kind"),
    [("job.taken", EventKind.TAKEN), ("job.delivered", EventKind.DELIVERED),
     ("job.question", EventKind.MESSAGE), ("job.declined", EventKind.RETURNED),
     ("job.celebrated", EventKind.UNKNOWN)],
)  # fmt: skip
def test_their_signed_answers_are_verified_and_parsed(adapter, type_, kind):
    data = {"order_id": "webhook-dsp_abc", "content": "All fixed", "url": "https://x.example/pr/1"}
    headers, body = callback(SECRET, type_, data, msg_id="msg_fixed_1")
    adapter.verify(headers, body)
    assert adapter.event_id(headers, body) == "msg_fixed_1"
    [event] = adapter.parse(headers, body)
    assert (event.kind, event.platform_status) == (kind, type_)
    if kind is not EventKind.UNKNOWN:
        assert event.external_id == "webhook-dsp_abc"
    if kind is EventKind.DELIVERED:
        assert (event.content, event.url, event.delivery_id) == (
            "All fixed", "https://x.example/pr/1", "msg_fixed_1")  # fmt: skip


def test_forged_and_old_answers_are_refused(adapter):
    data = {"order_id": "webhook-dsp_abc"}
    headers, body = callback(generate_secret(), "job.taken", data)
    with pytest.raises(SignatureError):
        adapter.verify(headers, body)
    old = datetime.now(UTC) - timedelta(minutes=6)
    headers, body = callback(SECRET, "job.taken", data, when=old)
    with pytest.raises(SignatureError):
        adapter.verify(headers, body)


@pytest.mark.parametrize(
    "body",
    [b"nope", b"[]", b'{"data": {}}', b'{"type": "job.taken"}',
     b'{"type": "job.taken", "data": {"content": "no order"}}'],
)  # fmt: skip
def test_malformed_answers_are_payload_errors(adapter, body):
    with pytest.raises(PayloadError):
        adapter.parse({"webhook-id": "msg_1"}, body)


def test_the_outbound_format_is_in_the_api_docs(client):
    spec = client.get("/api/openapi.json").get_json()
    [tag] = [t for t in spec["tags"] if t["name"] == "Teammate webhooks"]
    for word in ("job.assigned", "webhook-id", "webhook-signature", "job.revision_requested",
                 "job.answer", "job.reminder", "job.accepted", "job.taken", "job.delivered",
                 "job.question", "job.declined", "submission_url", "order_id"):  # fmt: skip
        assert word in tag["description"], word
