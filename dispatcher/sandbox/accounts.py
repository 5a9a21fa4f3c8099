"""The sandbox's accounts, as a platform's dashboard keeps them: an API key per account
(orders authenticate with it and see only their own), and the webhook endpoint and signing
secret the account registered (webhooks about its orders are signed with that secret).

There is no default secret: an account that registered none gets no signed webhooks.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from typing import Any

from adapters.standard_webhooks import secret_key
from dispatcher.sandbox.store import Store, iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    webhook_url TEXT NOT NULL DEFAULT '',
    webhook_secret TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
"""


class AuthError(Exception):
    """No key, or a key no account has."""


def install(store: Store) -> None:
    """Create the accounts table, and the orders' owner column in a file made before it."""
    with store.lock:
        store.conn.executescript(SCHEMA)
        columns = {r["name"] for r in store.conn.execute("PRAGMA table_info(orders)")}
        if "account_id" not in columns:
            store.conn.execute("ALTER TABLE orders ADD COLUMN account_id TEXT")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(store: Store, name: str) -> dict[str, Any]:
    """A new account; its API key is in this answer only."""
    account_id = f"acct_{secrets.token_hex(8)}"
    key = f"sbx_{secrets.token_urlsafe(24)}"
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO accounts (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)",
            (account_id, name, _hash(key), time.time()),
        )
    return {"id": account_id, "name": name, "api_key": key}


def authenticate(store: Store, authorization: str | None) -> sqlite3.Row:
    """The account whose key is in an ``Authorization: Bearer`` header."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthError("send Authorization: Bearer <API key>")
    row = store.one("SELECT * FROM accounts WHERE key_hash = ?", (_hash(key.strip()),))
    if row is None:
        raise AuthError("no account has this API key")
    return row


def set_webhook(store: Store, account_id: str, url: str, secret: str) -> None:
    """Register where webhooks go and the secret that signs them (ValueError if malformed)."""
    secret_key(secret)
    with store.tx() as conn:
        conn.execute(
            "UPDATE accounts SET webhook_url = ?, webhook_secret = ? WHERE id = ?",
            (url, secret, account_id),
        )


def as_json(row: sqlite3.Row) -> dict[str, Any]:
    """The account as its owner sees it: never the key, never the secret."""
    return {
        "id": row["id"],
        "name": row["name"],
        "webhook_url": row["webhook_url"],
        "webhook_secret_set": bool(row["webhook_secret"]),
        "created_at": iso(row["created_at"]),
    }


def sign_up(base_url: str, name: str, timeout: float = 10.0) -> str:
    """Make an account at a running sandbox over its API (what a person does on its site);
    returns the API key to store in a connection."""
    import requests

    response = requests.post(
        f"{base_url.rstrip('/')}/accounts", json={"name": name}, timeout=timeout
    )
    response.raise_for_status()
    return response.json()["api_key"]
