"""Issue 13: breakers are per connection, so the breaker gauge is too. It read one breaker
per adapter name, which no call uses once dispatches go through connections: an owner's
open breaker showed as closed."""

from __future__ import annotations

from dispatch.helpers import make_owner
from fakes.connections import connect_sandbox

from dispatcher.dispatch.breaker import breaker_for, breaker_key


def gauge(text: str, adapter: str, connection: str, state: str) -> str | None:
    prefix = f'dispatcher_breaker_state{{adapter="{adapter}",connection="{connection}",'
    wanted = prefix + f'state="{state}"}} '
    return next((line.split()[-1] for line in text.splitlines() if line.startswith(wanted)), None)


def test_the_gauge_shows_each_connections_own_breaker(app, client):
    ann, bob = make_owner("ann@example.com"), make_owner("bob@example.com")
    failing = connect_sandbox(ann.id, label="Ann's sandbox")
    healthy = connect_sandbox(bob.id, label="Bob's sandbox")
    tripped = breaker_for(breaker_key("sandbox", failing.id))
    for _ in range(tripped.threshold):
        tripped.record_failure()
    assert tripped.snapshot().state == "open"

    text = client.get("/metrics").get_data(as_text=True)

    assert gauge(text, "sandbox", str(failing.id), "open") == "1.0"
    assert gauge(text, "sandbox", str(failing.id), "closed") == "0.0"
    assert gauge(text, "sandbox", str(healthy.id), "closed") == "1.0"
    assert gauge(text, "sandbox", str(healthy.id), "open") == "0.0"
    assert gauge(text, "sandbox", "", "closed") == "1.0"  # calls made without a connection
