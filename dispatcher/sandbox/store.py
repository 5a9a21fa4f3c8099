"""The sandbox's own SQLite file: orders, assignment slots, submissions, payments, events.

One connection guarded by one lock (the sandbox is one process with a few threads), every
write in an immediate transaction, so a restart loses nothing that was answered.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    fields TEXT NOT NULL,
    client_ref TEXT,
    callback_url TEXT NOT NULL DEFAULT '',
    assignments INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
-- the platform's promise: one order per key, whatever the clients do
CREATE UNIQUE INDEX IF NOT EXISTS orders_key ON orders (idempotency_key);

-- one row per assignment: who holds it and when it next moves
CREATE TABLE IF NOT EXISTS slots (
    order_id TEXT NOT NULL REFERENCES orders (id),
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,          -- open, working, submitted, revising, accepted, rejected
    worker_id TEXT,
    due_at REAL,                  -- when the simulated worker acts next
    withdraw INTEGER NOT NULL DEFAULT 0,
    note TEXT,                    -- the owner's last feedback, for the redelivery
    PRIMARY KEY (order_id, idx)
);

CREATE TABLE IF NOT EXISTS submissions (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    slot INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    content TEXT NOT NULL,
    url TEXT,
    status TEXT NOT NULL,
    payout_cents INTEGER,
    review_note TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- deliberately no unique constraint: double payments are counted, not prevented here
CREATE TABLE IF NOT EXISTS payments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    slot INTEGER NOT NULL,
    submission_id TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    created_at REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,          -- pending, sent, failed, none (no callback_url)
    copies INTEGER NOT NULL DEFAULT 1,
    sent_copies INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL
);
CREATE INDEX IF NOT EXISTS events_order ON events (order_id, seq);
CREATE INDEX IF NOT EXISTS events_state ON events (state, next_attempt_at);

CREATE TABLE IF NOT EXISTS webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    at REAL NOT NULL,
    status_code INTEGER,
    error TEXT,
    ok INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO-8601 UTC with a Z, the form the webhooks carry."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """A thin wrapper over one sqlite3 connection shared by the sandbox's threads."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self.conn.row_factory = sqlite3.Row
        with self.lock:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; the lock keeps threads from interleaving theirs."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple | dict = ()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def bump(self, name: str, by: int = 1) -> None:
        with self.tx() as conn:
            bump(conn, name, by)

    def counters(self) -> dict[str, int]:
        return {r["name"]: r["value"] for r in self.query("SELECT name, value FROM counters")}

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def bump(conn: sqlite3.Connection, name: str, by: int = 1) -> None:
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
        (name, by),
    )


def order_json(conn: sqlite3.Connection, row: sqlite3.Row, base_url: str) -> dict[str, Any]:
    """The order as the API shows it, submissions included."""
    fields = json.loads(row["fields"])
    subs = conn.execute(
        "SELECT * FROM submissions WHERE order_id = ? ORDER BY created_at, rowid", (row["id"],)
    ).fetchall()
    return {
        "id": row["id"],
        "status": row["status"],
        "url": f"{base_url}/orders/{row['id']}",
        "idempotency_key": row["idempotency_key"],
        "client_ref": row["client_ref"],
        "title": fields["title"],
        "brief": fields["brief"],
        "acceptance_criteria": fields["acceptance_criteria"],
        "deliverable_kind": fields["deliverable_kind"],
        "price_cents": fields["price_cents"],
        "currency": fields["currency"],
        "assignments": row["assignments"],
        "callback_url": row["callback_url"],
        "due_date": fields["due_date"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "submissions": [submission_json(s) for s in subs],
    }


def submission_json(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "worker_id": row["worker_id"],
        "content": row["content"],
        "url": row["url"],
        "status": row["status"],
        "payout_cents": row["payout_cents"],
        "note": row["review_note"],
        "created_at": iso(row["created_at"]),
    }
