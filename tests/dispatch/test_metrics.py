"""The counters move when the work happens (issue 13): dispatch attempts by channel and
outcome, their latency, and webhook intake by result."""

from __future__ import annotations

from prometheus_client import REGISTRY

from dispatch.helpers import delegated
from dispatcher.dispatch import send, service


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_placed_dispatch_is_counted_and_timed(goal, paused, client):
    before = sample("dispatcher_dispatch_attempts_total", adapter="sandbox", outcome="placed")
    timed = sample("dispatcher_dispatch_seconds_count", adapter="sandbox")
    dispatch = service.dispatch_job(delegated(goal))
    assert send.send_dispatch(dispatch.id) == "placed"
    assert send.send_dispatch(dispatch.id) == "skipped: placed"
    after = sample("dispatcher_dispatch_attempts_total", adapter="sandbox", outcome="placed")
    assert after - before == 1
    assert sample("dispatcher_dispatch_seconds_count", adapter="sandbox") - timed == 2
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'dispatcher_dispatch_attempts_total{adapter="sandbox",outcome="placed"}' in scraped


def test_a_failing_platform_counts_retries(goal, paused):
    paused.control(fail_rate=1.0)
    before = sample("dispatcher_dispatch_attempts_total", adapter="sandbox", outcome="retried")
    dispatch = service.dispatch_job(delegated(goal))
    send.send_dispatch(dispatch.id)
    after = sample("dispatcher_dispatch_attempts_total", adapter="sandbox", outcome="retried")
    assert after - before == 1


def test_webhook_intake_is_counted_by_result(client, owner):
    from urllib.parse import urlparse

    from dispatcher import connections

    url = urlparse(connections.webhook_url(connections.for_adapter(owner.id, "sandbox"))).path

    def rejected() -> float:
        return sample("dispatcher_webhooks_total", adapter="sandbox", result="signature_rejected")

    def unknown() -> float:
        return sample("dispatcher_webhooks_total", adapter="unknown", result="no_adapter")

    was_rejected, was_unknown = rejected(), unknown()
    assert client.post(url, data=b"{}").status_code == 401
    assert client.post("/webhooks/no-such-thing", data=b"{}").status_code == 404
    assert rejected() - was_rejected == 1
    assert unknown() - was_unknown == 1
