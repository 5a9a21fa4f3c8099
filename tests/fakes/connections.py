"""One helper for every test that delegates to the sandbox: an owner's sandbox connection.

With a running sandbox (`base_url`), the connection gets a real sandbox account (its API
key) and registers its webhook URL and secret there, as `dispatcher demo` does. The secret is
the tests' SECRET, so hand-signed webhooks (dispatch.helpers.signed_webhook) verify.
"""

from __future__ import annotations

from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.models import Connection
from fakes.sandbox_fixture import SECRET, sandbox_account


def connect_sandbox(
    owner_id: int,
    base_url: str | None = None,
    *,
    label: str = "Sandbox",
    secret: str = SECRET,
    api_key: str | None = None,
    options: dict | None = None,
) -> Connection:
    """The owner's sandbox connection (committed); with `base_url`, an account there and the
    webhook registered (the adapter itself uses options["base_url"], else settings)."""
    if api_key is None:
        api_key = sandbox_account(base_url) if base_url else "sbx_not-a-real-key"
    connection, _ = connections.create(
        owner_id, "sandbox", label, {"api_key": api_key}, options or {}
    )
    connection.webhook_secret = secret
    if base_url:
        connections.sync_webhook(connection)
    db.session.commit()
    return connection
