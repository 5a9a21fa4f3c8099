"""Owner-given URLs are checked when a connection is saved: the connect form answers 422
with the reason beside the field, the API 422 naming the field; nothing is stored. And
again at send time: a person's endpoint that is not allowed fails the dispatch with the
reason, without a call."""

from __future__ import annotations

import pytest
from api.conftest import bearer
from fakes.receiver import Receiver
from sqlalchemy import select

from dispatcher.dispatch import service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Connection, Person
from dispatcher.planning import tree


@pytest.fixture
def receiver():
    running = Receiver(default_status=204).start()
    yield running
    running.stop()


@pytest.fixture
def app_config(app_config, receiver):
    return {**app_config, "outbound_allowlist": ("hooks.allowed.test",)}


def stored(adapter: str) -> list[Connection]:
    return list(db.session.scalars(select(Connection).where(Connection.adapter == adapter)))


UNSAFE = [
    ("http://127.0.0.1:8080/services/T/B/x", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[::ffff:10.0.0.1]/hook", "private"),
    ("file:///etc/passwd", "only http and https"),
]


@pytest.mark.parametrize(("url", "reason"), UNSAFE)
def test_the_connect_form_refuses_an_unsafe_slack_url(ann, client, url, reason):
    response = client.post(
        "/settings/connections/new/slack",
        data={
            "slack-label": "Team",
            "slack-credential_webhook_url": url,
            "slack-credential_signing_secret": "s3cret",
        },  # fmt: skip
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert reason in page
    assert stored("slack") == []


@pytest.mark.parametrize(("url", "reason"), UNSAFE)
def test_the_api_refuses_an_unsafe_url_naming_the_field(app, ann, url, reason):
    api = bearer(app, ann)
    response = api.post(
        "/api/v1/connections",
        json={
            "adapter": "slack",
            "label": "Team",
            "credentials": {"webhook_url": url, "signing_secret": "s"},
        },  # fmt: skip
    )
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]
    assert reason in errors["webhook_url"][0]
    response = api.post(
        "/api/v1/connections",
        json={"adapter": "webhook", "label": "Dev", "options": {"endpoint_url": url}},
    )
    assert response.status_code == 422
    assert reason in response.get_json()["errors"]["json"]["endpoint_url"][0]
    assert stored("slack") == stored("webhook") == []


def test_a_host_the_allow_list_names_is_saved(app, ann):
    api = bearer(app, ann)
    response = api.post(
        "/api/v1/connections",
        json={
            "adapter": "webhook",
            "label": "Dev",
            "options": {"endpoint_url": "https://hooks.allowed.test/jobs"},
        },  # fmt: skip
    )
    assert response.status_code == 201, response.get_json()


def test_an_endpoint_not_allowed_fails_the_dispatch_at_send_time(ann, receiver, run_jobs):
    """An endpoint that passed when saved (under another allow-list, or while its name
    resolved elsewhere) is checked again when the job goes out: the dispatch fails for good
    with the reason, and the endpoint is never called."""
    from dispatcher import connections

    connection, _ = connections.create(ann.id, "webhook", "Dev", {}, {})
    connection.options = {"endpoint_url": receiver.url}  # stored as if it had passed
    goal = tree.create_goal(ann.id, title="Site", budget_cents=10_000)
    job = tree.add_job(goal, title="Fix form", price_cents=1000, mode="delegate",
                       channel="webhook", connection_id=connection.id)  # fmt: skip
    person = Person(owner_id=ann.id, name="Dev team")  # no endpoint: the connection's is used
    db.session.add(person)
    db.session.flush()
    job.person_id = person.id  # a teammate channel's job goes to one person
    db.session.commit()
    dispatch = service.dispatch_job(job)
    run_jobs()
    db.session.refresh(job)
    db.session.refresh(dispatch)
    assert job.status == Status.FAILED
    assert "loopback" in dispatch.last_error and "refused" in dispatch.last_error
    assert dispatch.attempts == 1  # permanent: not retried
    assert receiver.requests == []


def test_test_connection_reports_an_unsafe_url(ann, client, receiver):
    """A URL stored before the allow-list changed: "Test connection" says why it is
    refused (a failed check on the page), never a 500, and calls nothing."""
    from dispatcher import connections

    connection, _ = connections.create(ann.id, "webhook", "Dev", {}, {})
    connection.options = {"endpoint_url": receiver.url}
    db.session.commit()
    response = client.post(f"/settings/connections/{connection.id}/check")
    assert response.status_code == 303
    db.session.refresh(connection)
    assert connection.check_ok is False and "loopback" in connection.check_message
    assert receiver.requests == []


def test_changing_a_connection_checks_its_urls_too(ann):
    from dispatcher import connections

    connection, _ = connections.create(
        ann.id, "webhook", "Dev", {}, {"endpoint_url": "https://hooks.allowed.test/jobs"}
    )
    db.session.commit()
    with pytest.raises(ValueError, match="metadata") as refused:
        connections.change(connection, options={"endpoint_url": "http://169.254.169.254/"})
    assert refused.value.field == "endpoint_url"
    assert connection.options == {"endpoint_url": "https://hooks.allowed.test/jobs"}
    connections.change(connection, label="Dev Co")  # a label alone needs no check
    assert connection.label == "Dev Co"
