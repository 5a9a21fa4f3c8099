"""Connections at rest: credentials and webhook secrets encrypted (Fernet), key rotation
(MultiFernet), the per-process adapter cache, and what deleting is refused for."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from dispatcher import connections, secretbox
from dispatcher.config import Settings
from dispatcher.dispatch import service
from dispatcher.errors import ConfigurationError, InvalidTransition
from dispatcher.extensions import db
from dispatcher.models import Connection, Owner
from dispatcher.planning import tree

API_KEY = "sbx_plaintext-api-key-that-must-never-be-stored"


def use_keys(app, keys: str) -> None:
    app.config["SETTINGS"] = replace(app.config["SETTINGS"], encryption_key=keys)


def raw_row(connection_id: int) -> dict:
    row = db.session.execute(
        text("SELECT * FROM connections WHERE id = :id"), {"id": connection_id}
    ).mappings()
    return dict(row.one())


@pytest.fixture
def stranger(app) -> Owner:
    owner = Owner(email="sam@example.com", name="Sam")
    owner.set_password("correct horse")
    db.session.add(owner)
    db.session.commit()
    return owner


def test_credentials_and_webhook_secret_are_encrypted_at_rest(app, stranger):
    connection, secret = connections.create(stranger.id, "sandbox", "Mine", {"api_key": API_KEY})
    db.session.commit()
    raw = raw_row(connection.id)
    stored = " ".join(str(v) for v in raw.values())
    assert API_KEY not in stored and secret not in stored
    assert "api_key" not in raw["credentials_sealed"]  # not even the field names
    db.session.expire_all()
    again = db.session.get(Connection, connection.id)
    assert again.credentials == {"api_key": API_KEY} and again.webhook_secret == secret
    assert secret.startswith("whsec_") and API_KEY not in repr(again)


def test_a_new_key_rolls_in_with_multifernet_and_rotate_reencrypts(app, stranger):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(app, old)
    connection, _ = connections.create(stranger.id, "sandbox", "Mine", {"api_key": API_KEY})
    db.session.commit()
    sealed_under_old = raw_row(connection.id)["credentials_sealed"]

    use_keys(app, f"{new},{old}")  # the new key first: it encrypts, both decrypt
    assert secretbox.open_json(sealed_under_old) == {"api_key": API_KEY}
    rotated = secretbox.rotate(sealed_under_old)
    use_keys(app, new)  # the old key retired
    assert secretbox.open_json(rotated) == {"api_key": API_KEY}
    with pytest.raises(secretbox.SecretUnreadable) as caught:
        secretbox.open_json(sealed_under_old)
    assert API_KEY not in str(caught.value)


def test_rekey_moves_every_connection_to_the_new_key(app, stranger):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(app, old)
    connection, secret = connections.create(stranger.id, "sandbox", "M", {"api_key": API_KEY})
    db.session.commit()
    use_keys(app, f"{new},{old}")
    assert connections.rekey_all() == 1
    use_keys(app, new)
    db.session.expire_all()
    again = db.session.get(Connection, connection.id)
    assert again.credentials == {"api_key": API_KEY} and again.webhook_secret == secret


def test_a_malformed_key_fails_with_the_variables_name(app):
    with pytest.raises(ConfigurationError, match="DISPATCHER_ENCRYPTION_KEY"):
        secretbox.box_for("not-a-fernet-key")


def test_the_key_is_generated_once_under_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPATCHER_ENCRYPTION_KEY", raising=False)
    first = Settings.from_env({"instance_path": tmp_path})
    second = Settings.from_env({"instance_path": tmp_path})
    assert first.encryption_key == second.encryption_key
    assert (tmp_path / "encryption_key").read_text().strip() == first.encryption_key
    Fernet(first.encryption_key)  # a valid key
    assert first.encryption_key not in repr(first)
    monkeypatch.setenv("DISPATCHER_ENCRYPTION_KEY", "k1,k2")
    assert Settings.from_env({"instance_path": tmp_path}).encryption_key == "k1,k2"


def test_the_adapter_is_cached_and_rebuilt_when_the_connection_changes(app, stranger):
    connection, secret = connections.create(stranger.id, "sandbox", "Mine", {"api_key": API_KEY})
    db.session.commit()
    first = connections.adapter_for_connection(connection.id)
    assert connections.adapter_for_connection(connection.id) is first
    assert first.credentials == {"api_key": API_KEY, "webhook_secret": secret}
    new_secret = connections.rotate_secret(connection)
    db.session.commit()
    rebuilt = connections.adapter_for_connection(connection.id)
    assert rebuilt is not first and rebuilt.credentials["webhook_secret"] == new_secret
    assert new_secret != secret


def test_sandbox_without_a_connection_cannot_be_used(app, stranger):
    goal = tree.create_goal(stranger.id, title="g", budget_cents=10_000)
    job = tree.add_job(goal, title="x", mode="delegate", channel="sandbox", price_cents=100)
    assert job.connection_id is None
    with pytest.raises(InvalidTransition, match="connect a sandbox account first"):
        service.dispatch_job(job)
    db.session.rollback()
    assert job.status == "draft" and goal.reserved_cents == 0


def test_a_connection_holding_money_cannot_be_deleted(app, owner, goal):
    connection = connections.for_adapter(owner.id, "sandbox")
    job = tree.add_job(goal, title="x", mode="delegate", channel="sandbox", price_cents=100)
    assert job.connection_id == connection.id
    service.dispatch_job(job)
    with pytest.raises(connections.ConnectionInUse, match="money held"):
        connections.delete(connection)
    db.session.rollback()
    service.cancel_job(job)
    connections.delete(connection)
    db.session.commit()
    assert db.session.get(Connection, connection.id) is None
    db.session.refresh(job)
    assert job.connection_id is None  # the job stays, pointing nowhere
