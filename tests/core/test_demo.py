"""`dispatcher demo`: the demo owner gets its own sandbox connection, registered in the local
sandbox's file, and its delegated jobs use it; no public default secret anywhere."""

from __future__ import annotations

from sqlalchemy import func, select

from dispatcher import connections
from dispatcher.demo import DEMO_EMAIL, seed_demo
from dispatcher.extensions import db
from dispatcher.models import Connection, MicroJob, Owner
from dispatcher.sandbox.store import Store


def test_the_demo_owner_gets_a_registered_sandbox_connection(app):
    assert seed_demo() is True
    owner = db.session.scalars(select(Owner).where(Owner.email == DEMO_EMAIL)).one()
    connection = connections.for_adapter(owner.id, "sandbox")
    assert connection is not None and connection.credentials["api_key"].startswith("sbx_")
    store = Store(app.config["SETTINGS"].instance_path / "sandbox.db")
    try:
        [account] = store.query("SELECT * FROM accounts")
    finally:
        store.close()
    assert account["webhook_secret"] == connection.webhook_secret
    assert account["webhook_url"].endswith(connections.webhook_path(connection))
    delegated = db.session.scalars(select(MicroJob).where(MicroJob.mode == "delegate")).all()
    assert delegated and {j.connection_id for j in delegated} == {connection.id}
    assert seed_demo() is False  # again: nothing doubled
    assert db.session.scalar(select(func.count(Connection.id))) == 1


def test_settings_have_no_sandbox_secret(app):
    settings = app.config["SETTINGS"]
    assert not hasattr(settings, "sandbox_webhook_secret")
