"""Issue 12, webhook intake's fast path: the cached adapter never outlives a change to its
connection (in any process), the hooks webhooks skip, and the answers that must not change
(duplicate, Redis down) with the single INSERT."""

from __future__ import annotations

import base64
from contextlib import contextmanager

import pytest
from dispatch.helpers import hook_url, signed_webhook
from fakes.connections import connect_sandbox
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from dispatcher import connections, create_app
from dispatcher.extensions import db
from dispatcher.models import Connection, InboundEvent
from dispatcher.queues import INBOUND, get_queue

NEW_SECRET = "whsec_" + base64.b64encode(b"a brand new secret, rotated now!").decode()


@pytest.fixture
def other_worker(app_config):
    """A second app over the same database: another gunicorn worker, with its own caches."""
    other = create_app(app_config)

    @contextmanager
    def acting():
        with other.app_context():
            yield
            db.session.remove()

    yield acting
    with other.app_context():
        db.engine.dispose()


def post(client, url, secret=None, msg_id="msg_1"):
    extra = {"secret": secret} if secret else {}
    headers, body = signed_webhook("order.taken", "ord_1", msg_id=msg_id, **extra)
    return client.post(url, data=body, headers=headers)


def stored() -> list[InboundEvent]:
    return db.session.query(InboundEvent).order_by(InboundEvent.id).all()


def test_a_secret_rotated_by_another_worker_takes_effect_on_the_next_webhook(
    client, owner, other_worker
):
    url = hook_url()
    assert post(client, url, msg_id="warm").status_code == 202  # this worker caches it
    connection_id = db.session.query(Connection.id).scalar()
    with other_worker():
        row = db.session.get(Connection, connection_id)
        connections.rotate_secret(row)  # what the settings page does
        secret = row.webhook_secret
        db.session.commit()
    assert post(client, url, msg_id="old").status_code == 401  # the old secret: refused
    assert post(client, url, secret=secret, msg_id="new").status_code == 202
    assert [r.event_id for r in stored()] == ["warm", "new"]


def test_a_connection_deleted_by_another_worker_is_404_on_the_next_webhook(
    client, owner, other_worker
):
    url = hook_url()
    assert post(client, url, msg_id="warm").status_code == 202
    connection_id = db.session.query(Connection.id).scalar()
    with other_worker():
        connections.delete(db.session.get(Connection, connection_id))
        db.session.commit()
    assert post(client, url, msg_id="after").status_code == 404
    assert client.head(url).status_code == 404
    assert [r.event_id for r in stored()] == ["warm"]


def test_a_new_connection_that_reuses_a_deleted_ones_id_never_gets_its_cached_adapter(
    client, owner, other_worker
):
    """SQLite gives the next row the highest id again once it is deleted: the new connection
    (version 1, like the old one) must verify with its own secret, not the cached one."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite gives a deleted row's id to the next one")
    url = hook_url()
    assert post(client, url, msg_id="warm").status_code == 202  # caches id N, version 1
    old_id = db.session.query(Connection.id).scalar()
    with other_worker():
        connections.delete(db.session.get(Connection, old_id))
        db.session.commit()
        fresh = connect_sandbox(owner.id, secret=NEW_SECRET)
        fresh_id, fresh_url = fresh.id, connections.webhook_path(fresh)
    assert fresh_id == old_id  # the case under test: the id came back
    assert post(client, fresh_url, msg_id="old-secret").status_code == 401
    assert post(client, fresh_url, secret=NEW_SECRET, msg_id="own").status_code == 202


def test_a_burst_of_webhooks_from_one_address_gets_no_429_and_no_cookie(client, owner):
    """The limiter skips the webhooks blueprint; nothing sets a session cookie on them."""
    url = hook_url()
    for n in range(30):
        answer = post(client, url, msg_id=f"burst-{n}")
        assert answer.status_code == 202, answer.get_data(as_text=True)
        assert "Set-Cookie" not in answer.headers
        assert not any(h.lower().startswith("x-ratelimit") for h, _ in answer.headers.items())
    assert len(stored()) == 30


def test_a_redelivery_of_an_event_still_owed_is_200_and_queued_again(client, owner):
    url = hook_url()
    assert post(client, url, msg_id="msg_x").status_code == 202
    [row] = stored()
    get_queue(INBOUND).empty()  # the first enqueue was lost (Redis wiped, say)
    get_queue(INBOUND).connection.delete(f"rq:job:inbound-{row.id}")
    again = post(client, url, msg_id="msg_x")
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"
    assert get_queue(INBOUND).get_job_ids() == [f"inbound-{row.id}"]
    assert len(stored()) == 1


def test_with_redis_down_a_webhook_is_202_and_left_for_the_reconciler(app, client, owner):
    url = hook_url()
    working = app.extensions["dispatcher.redis"] or get_queue(INBOUND).connection
    app.extensions["dispatcher.redis"] = Redis(
        unix_socket_path="/nonexistent.sock", retry=Retry(NoBackoff(), 0)
    )
    answer = post(client, url, msg_id="msg_down")
    assert answer.status_code == 202
    [row] = stored()
    assert (row.event_id, row.status) == ("msg_down", "received")
    app.extensions["dispatcher.redis"] = working
    assert get_queue(INBOUND).get_job_ids() == []
    from dispatcher.reconcile import reconcile

    reconcile()
    assert get_queue(INBOUND).get_job_ids() == [f"inbound-{row.id}"]
