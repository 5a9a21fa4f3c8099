"""Settings → Connections over HTTP: connect, secret shown once, masked everywhere after,
test against the real sandbox, rotate, delete, and another owner's connection refused."""

from __future__ import annotations

import logging
import re

import pytest
from fakes.sandbox_fixture import SECRET, sandbox, sandbox_account  # noqa: F401
from sqlalchemy import select, text

from dispatcher import connections
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Connection, Dispatch

from .conftest import page, reload

URL = "/settings/connections"


@pytest.fixture
def app_config(app_config, sandbox):  # noqa: F811
    return {**app_config, "sandbox_url": sandbox.base_url}


def connect(client, api_key: str, label: str = "My sandbox", **extra):
    data = {"sandbox-label": label, "sandbox-credential_api_key": api_key, **extra}
    return client.post(f"{URL}/new/sandbox", data=data)


def shown_secret(html: str) -> str:
    return re.search(r'<code id="secret">(whsec_[^<]+)</code>', html).group(1)


def test_connect_shows_the_secret_once_and_masks_everything_after(
    client,
    ann,
    sandbox,  # noqa: F811
    caplog,
):
    caplog.set_level(logging.DEBUG)
    api_key = sandbox_account(sandbox.base_url, secret=None)
    response = connect(client, api_key)
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    html = page(response)
    secret = shown_secret(html)
    connection = db.session.scalars(
        select(Connection).where(Connection.label == "My sandbox")
    ).one()
    hook = f"/webhooks/sandbox/{connection.webhook_path}"
    assert hook in html and api_key not in html
    # registered at the sandbox as a platform dashboard would keep it
    account = sandbox.market.store.one("SELECT * FROM accounts ORDER BY created_at DESC")
    assert account["webhook_secret"] == secret and account["webhook_url"].endswith(hook)

    check = client.post(f"{URL}/{connection.id}/check")
    assert check.status_code == 303
    later = [page(client.get(URL)), page(client.get("/status")), page(client.get("/goals"))]
    for html in later:
        assert secret not in html and api_key not in html
    assert "Test connection" in later[0] and hook in later[0] and "ok" in later[0]
    raw = db.session.execute(text("SELECT * FROM connections")).mappings().all()
    assert all(api_key not in str(dict(r)) and secret not in str(dict(r)) for r in raw)
    assert api_key not in caplog.text and secret not in caplog.text


def test_the_sandbox_says_what_it_is_before_it_is_connected(client, ann):
    html = page(client.get(URL))
    assert 'type="password"' in html and "A simulated marketplace" in html


def test_a_refused_form_never_sends_the_typed_key_back(client, ann):
    response = connect(client, "sbx_typed-secret-key", label="x" * 300)
    assert response.status_code == 422
    assert "sbx_typed-secret-key" not in page(response)
    assert db.session.scalars(select(Connection).where(Connection.label.like("x%"))).all() == []


def test_a_missing_credential_is_a_form_error(client, ann):
    response = connect(client, "")
    assert response.status_code == 422 and "api key is required" in page(response)


def test_a_failed_test_says_why_without_the_key(client, ann):
    response = connect(client, "sbx_wrong-key-nobody-has")
    connection = db.session.scalars(select(Connection).order_by(Connection.id.desc())).first()
    assert "webhook not registered yet" in page(response)
    response = client.post(f"{URL}/{connection.id}/check", follow_redirects=True)
    html = page(response)
    assert "401" in html and "sbx_wrong-key-nobody-has" not in html
    assert reload(connection).check_ok is False


def test_rotating_shows_a_new_secret_once_and_the_old_one_stops_verifying(
    client,
    ann,
    sandbox,  # noqa: F811
):
    from dispatch.helpers import signed_webhook

    connection = connections.for_adapter(ann.id, "sandbox")  # made with the tests' SECRET
    hook = connections.webhook_path(connection)
    headers, body = signed_webhook("order.taken", "ord_1", secret=SECRET)
    assert client.post(hook, data=body, headers=headers).status_code == 202
    response = client.post(f"{URL}/{connection.id}/rotate")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    new_secret = shown_secret(page(response))
    assert new_secret != SECRET and new_secret not in page(client.get(URL))
    headers, body = signed_webhook("order.taken", "ord_1", secret=SECRET)
    assert client.post(hook, data=body, headers=headers).status_code == 401
    headers, body = signed_webhook("order.taken", "ord_1", secret=new_secret)
    assert client.post(hook, data=body, headers=headers).status_code == 202


def test_another_owners_connection_is_404_and_cannot_be_picked(
    client, bob_client, ann, goal, make_job
):
    annes = connections.for_adapter(ann.id, "sandbox")
    for action in ("check", "rotate", "delete"):
        assert bob_client.post(f"{URL}/{annes.id}/{action}").status_code == 404
    assert db.session.get(Connection, annes.id) is not None
    assert "My sandbox" not in page(bob_client.get(URL))
    # Bob's own job cannot be delegated to Ann's connection
    from dispatcher.planning import tree
    from web.conftest import owner_by_email

    bob = owner_by_email("bob@example.com")
    bobs_goal = tree.create_goal(bob.id, title="Bob's", budget_cents=10_000)
    bobs_job = tree.add_job(bobs_goal, title="his")
    response = bob_client.post(
        f"/jobs/{bobs_job.id}/mode", data={"mode": "delegate", "channel": str(annes.id)}
    )
    assert response.status_code == 400 and "no connection" in page(response)
    assert reload(bobs_job).connection_id is None
    with pytest.raises(Exception, match="not found"):
        tree.set_mode(bobs_job, "delegate", connection_id=annes.id)


def test_deleting_is_refused_while_a_job_holds_money(client, ann, make_job):
    connection = connections.for_adapter(ann.id, "sandbox")
    connection_id = connection.id
    job = make_job(mode="delegate", channel="sandbox", price_cents=1_000)
    dispatch_service.dispatch_job(job)
    response = client.post(f"{URL}/{connection.id}/delete", follow_redirects=True)
    assert "money held" in page(response)
    assert db.session.get(Connection, connection.id) is not None
    dispatch_service.cancel_job(reload(job))
    client.post(f"{URL}/{connection_id}/delete")
    db.session.expire_all()
    assert db.session.get(Connection, connection_id) is None
    assert db.session.scalars(select(Dispatch)).one().connection_id is None
