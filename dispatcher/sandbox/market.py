"""The marketplace's rules: orders under idempotency keys, reviews that pay once, events.

A repeated identical review decision is a no-op answered like the first (counted as
`review_replays` in the stats, so tests can see a client that sends a decision twice).

`Marketplace` is what the HTTP layer, the simulated workers and the webhook sender share. It
keeps every fact in the `Store`; the only in-memory state is the knobs and the dice.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

from dispatcher.sandbox import accounts
from dispatcher.sandbox.options import Dice, SandboxOptions
from dispatcher.sandbox.store import Store, bump, iso, order_json

OPEN_STATES = ("open", "taken", "delivered")
#: slot states in which a simulated worker still has something to do
ACTIVE_SLOTS = ("open", "working", "revising")


class SandboxError(Exception):
    """A refusal the API answers with problem JSON."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any):
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra
        super().__init__(detail)


def new_id(prefix: str) -> str:
    # ids come from `secrets`, never from the seeded dice, so a restart cannot repeat one
    return f"{prefix}_{secrets.token_hex(8)}"


def request_hash(body: Any) -> str:
    """The request's identity for idempotency: key order and whitespace do not matter."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Marketplace:
    def __init__(
        self,
        db_path: str | Path,
        options: SandboxOptions | None = None,
        base_url: str | None = None,
    ):
        self.options = options or SandboxOptions()
        self.dice = Dice(self.options.seed)
        self.store = Store(db_path)
        accounts.install(self.store)
        self.base_url = base_url.rstrip("/") if base_url else None

    def close(self) -> None:
        self.store.close()

    def set_options(self, values: dict[str, Any]) -> dict[str, Any]:
        self.options.update(values)
        if "seed" in values:
            self.dice.reseed(self.options.seed)
        return self.options.as_dict()

    def _base(self, base_url: str | None) -> str:
        return (base_url or self.base_url or "http://127.0.0.1").rstrip("/")

    # -- orders ---------------------------------------------------------------------------
    def create_order(
        self,
        key: str,
        body: dict,
        fields: dict,
        base_url: str | None = None,
        account_id: str | None = None,
    ) -> tuple[dict, bool]:
        """Create the order, or replay the one made under `key`. Returns (order, created)."""
        digest = request_hash(body)
        now = time.time()
        with self.store.tx() as conn:
            existing = conn.execute(
                "SELECT * FROM orders WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if existing is not None:
                if existing["request_hash"] != digest or existing["account_id"] != account_id:
                    raise SandboxError(
                        422,
                        "Idempotency key reused",
                        "idempotency key reused with a different request",
                        idempotency_key=key,
                    )
                bump(conn, "idempotent_replays")
                return order_json(conn, existing, self._base(base_url)), False
            order_id = new_id("ord")
            conn.execute(
                "INSERT INTO orders (id, idempotency_key, request_hash, status, fields, "
                "client_ref, callback_url, assignments, created_at, updated_at, account_id) "
                "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)",
                (
                    order_id,
                    key,
                    digest,
                    json.dumps(fields),
                    fields["client_ref"],
                    fields["callback_url"],
                    fields["assignments"],
                    now,
                    now,
                    account_id,
                ),
            )
            take_at, stagger = now + self.options.take_delay, self.options.take_stagger
            conn.executemany(
                "INSERT INTO slots (order_id, idx, state, due_at) VALUES (?, ?, 'open', ?)",
                [(order_id, i, take_at + i * stagger) for i in range(fields["assignments"])],
            )
            row = fetch_order(conn, order_id)
            return order_json(conn, row, self._base(base_url)), True

    def get_order(self, order_id: str, base_url: str | None = None) -> dict:
        with self.store.lock:
            conn = self.store.conn
            return order_json(conn, fetch_order(conn, order_id), self._base(base_url))

    def find_orders(
        self,
        key: str | None,
        base_url: str | None = None,
        limit: int = 100,
        account_id: str | None = None,
    ) -> list:
        """Orders by key (or the newest), of one account when `account_id` is given."""
        mine = "" if account_id is None else " AND account_id = :acct"
        args = {"key": key, "limit": limit, "acct": account_id}
        with self.store.lock:
            conn = self.store.conn
            if key is None:
                rows = conn.execute(
                    f"SELECT * FROM orders WHERE 1 = 1{mine} ORDER BY created_at DESC LIMIT :limit",
                    args,
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT * FROM orders WHERE idempotency_key = :key{mine}", args
                ).fetchall()
            return [order_json(conn, r, self._base(base_url)) for r in rows]

    def cancel(self, order_id: str, base_url: str | None = None) -> dict:
        """Cancel an order that is still open; cancelling twice is the same as once."""
        with self.store.tx() as conn:
            row = fetch_order(conn, order_id)
            if row["status"] in ("completed", "expired"):
                raise SandboxError(
                    409, "Order closed", f"order {order_id} is {row['status']}: nothing to cancel"
                )
            if row["status"] != "cancelled":
                conn.execute(
                    "UPDATE slots SET state = 'cancelled', due_at = NULL "
                    "WHERE order_id = ? AND state IN ('open', 'working', 'revising')",
                    (order_id,),
                )
                _set_status(conn, order_id, "cancelled")
            return order_json(conn, fetch_order(conn, order_id), self._base(base_url))

    def expire_open_slots(self, order_id: str) -> list[int]:
        """The platform's deadline passed for an order part-way through: every place nobody
        delivered for (open or being worked on) expires, one order.expired event each; work
        already delivered stays to be reviewed. Returns the places expired."""
        now = time.time()
        with self.store.tx() as conn:
            row = fetch_order(conn, order_id)
            if row["status"] in ("cancelled", "expired", "completed"):
                return []
            slots = [
                r["idx"]
                for r in conn.execute(
                    "SELECT idx FROM slots WHERE order_id = ? AND state IN ('open', 'working')",
                    (order_id,),
                )
            ]
            for idx in slots:
                conn.execute(
                    "UPDATE slots SET state = 'expired', due_at = NULL "
                    "WHERE order_id = ? AND idx = ?",
                    (order_id, idx),
                )
                self.emit(conn, order_id, "order.expired", now, slot=idx)
            refresh_status(conn, order_id)
            return slots

    def check_owner(self, order_id: str, account_id: str) -> None:
        """404 unless the order belongs to the account (another's looks like a missing one)."""
        row = self.store.one("SELECT account_id FROM orders WHERE id = ?", (order_id,))
        if row is None or row["account_id"] != account_id:
            raise SandboxError(404, "Not found", f"no order {order_id}")

    def events(self, order_id: str) -> list[dict]:
        with self.store.lock:
            fetch_order(self.store.conn, order_id)
            rows = self.store.conn.execute(
                "SELECT body FROM events WHERE order_id = ? ORDER BY seq", (order_id,)
            ).fetchall()
        return [json.loads(r["body"]) for r in rows]

    # -- reviews --------------------------------------------------------------------------
    def accept(self, order_id: str, sub_id: str, payout_cents: int, base_url: str | None = None):
        """Accept and pay a submission once; the same call again answers the same."""
        with self.store.tx() as conn:
            order, sub = _submission(conn, order_id, sub_id)
            if sub["status"] == "accepted":
                if sub["payout_cents"] != payout_cents:
                    raise SandboxError(
                        409,
                        "Already accepted",
                        f"submission {sub_id} was already accepted with payout_cents "
                        f"{sub['payout_cents']}",
                    )
                bump(conn, "review_replays")
                return order_json(conn, order, self._base(base_url))
            _require_submitted(sub, "accepted")
            bump(conn, "reviews_accepted")
            now = time.time()
            conn.execute(
                "UPDATE submissions SET status = 'accepted', payout_cents = ?, updated_at = ? "
                "WHERE id = ?",
                (payout_cents, now, sub_id),
            )
            conn.execute(
                "INSERT INTO payments (order_id, slot, submission_id, amount_cents, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (order_id, sub["slot"], sub_id, payout_cents, now),
            )
            _set_slot(conn, order_id, sub["slot"], "accepted")
            self.emit(
                conn,
                order_id,
                "submission.paid",
                now,
                submission=fetch_submission(conn, sub_id),
                extra={"payout_cents": payout_cents},
            )
            return order_json(conn, fetch_order(conn, order_id), self._base(base_url))

    def reject(self, order_id: str, sub_id: str, reason: str, base_url: str | None = None):
        """Reject a submission; the same call again is a no-op that answers the same."""
        with self.store.tx() as conn:
            order, sub = _submission(conn, order_id, sub_id)
            if sub["status"] == "rejected":
                bump(conn, "review_replays")  # the same decision again: a no-op
            else:
                _require_submitted(sub, "rejected")
                bump(conn, "reviews_rejected")
                _review(conn, sub_id, "rejected", reason)
                _set_slot(conn, order_id, sub["slot"], "rejected")
            return order_json(conn, fetch_order(conn, order_id), self._base(base_url))

    def request_revision(
        self, order_id: str, sub_id: str, feedback: str, base_url: str | None = None
    ):
        """Send the work back; the worker redelivers a new submission after deliver_delay.
        The same call again is a no-op that answers the same."""
        with self.store.tx() as conn:
            order, sub = _submission(conn, order_id, sub_id)
            if sub["status"] == "revision_requested":
                bump(conn, "review_replays")  # the same decision again: a no-op
            else:
                _require_submitted(sub, "sent back for revision")
                bump(conn, "reviews_revision_requested")
                _review(conn, sub_id, "revision_requested", feedback)
                conn.execute(
                    "UPDATE slots SET state = 'revising', due_at = ?, note = ? "
                    "WHERE order_id = ? AND idx = ?",
                    (time.time() + self.options.deliver_delay, feedback, order_id, sub["slot"]),
                )
                refresh_status(conn, order_id)
            return order_json(conn, fetch_order(conn, order_id), self._base(base_url))

    # -- events ---------------------------------------------------------------------------
    def emit(
        self,
        conn: sqlite3.Connection,
        order_id: str,
        type_: str,
        now: float,
        submission: sqlite3.Row | None = None,
        worker_id: str | None = None,
        extra: dict[str, Any] | None = None,
        slot: int | None = None,
    ) -> dict:
        """Record one event; the sender delivers it to the order's callback_url, if any."""
        order = fetch_order(conn, order_id)
        data = {
            "order_id": order_id,
            "client_ref": order["client_ref"],
            "submission_id": submission["id"] if submission is not None else None,
            "worker_id": submission["worker_id"] if submission is not None else worker_id,
            "slot": submission["slot"] if submission is not None else slot,
            "content": submission["content"] if submission is not None else None,
            "url": submission["url"] if submission is not None else None,
            "status": order["status"],
            **(extra or {}),
        }
        body = {"id": new_id("evt"), "type": type_, "created_at": iso(now), "data": data}
        copies = 2 if self.dice.chance(self.options.duplicate_webhooks) else 1
        if copies > 1 and order["callback_url"]:
            bump(conn, "webhooks_duplicated")
        conn.execute(
            "INSERT INTO events (id, order_id, type, body, created_at, state, copies, "
            "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body["id"],
                order_id,
                type_,
                json.dumps(body),
                now,
                "pending" if order["callback_url"] and self.options.send_webhooks else "none",
                copies,
                now,
            ),
        )
        return body

    # -- the platform's own records ---------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        q = self.store.query
        by_key = {
            r["idempotency_key"]: r["n"]
            for r in q("SELECT idempotency_key, COUNT(*) AS n FROM orders GROUP BY 1")
        }
        by_status = {
            r["status"]: r["n"] for r in q("SELECT status, COUNT(*) n FROM orders GROUP BY 1")
        }
        attempts = q("SELECT ok, COUNT(*) n FROM webhook_attempts GROUP BY ok")
        sent = sum(r["n"] for r in attempts if r["ok"])
        failed = sum(r["n"] for r in attempts if not r["ok"])
        events = {r["state"]: r["n"] for r in q("SELECT state, COUNT(*) n FROM events GROUP BY 1")}
        pay = q("SELECT COUNT(*) n, COALESCE(SUM(amount_cents), 0) s FROM payments")[0]
        paid_by_submission: dict[str, int] = {}
        for r in q("SELECT submission_id, amount_cents FROM payments"):
            paid_by_submission[r["submission_id"]] = (
                paid_by_submission.get(r["submission_id"], 0) + r["amount_cents"]
            )
        double = q(
            "SELECT COALESCE(SUM(n - 1), 0) d FROM "
            "(SELECT COUNT(*) n FROM payments GROUP BY order_id, slot HAVING COUNT(*) > 1)"
        )[0]["d"]
        return {
            "orders": sum(by_key.values()),
            "orders_by_key": by_key,
            "orders_by_status": by_status,
            "duplicate_orders": sum(1 for n in by_key.values() if n > 1),
            "events": sum(events.values()),
            "webhooks_sent": sent,
            "webhooks_failed": failed,
            "webhooks_pending": events.get("pending", 0),
            "webhooks_abandoned": events.get("failed", 0),
            "payments": pay["n"],
            "paid_cents": pay["s"],
            "double_payments": double,
            "paid_by_submission": paid_by_submission,
            "counters": self.store.counters(),
        }


def fetch_order(conn: sqlite3.Connection, order_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        raise SandboxError(404, "Not found", f"no order {order_id}")
    return row


def fetch_submission(conn: sqlite3.Connection, sub_id: str) -> sqlite3.Row:
    return conn.execute("SELECT * FROM submissions WHERE id = ?", (sub_id,)).fetchone()


def _submission(conn: sqlite3.Connection, order_id: str, sub_id: str):
    order = fetch_order(conn, order_id)
    sub = conn.execute(
        "SELECT * FROM submissions WHERE id = ? AND order_id = ?", (sub_id, order_id)
    ).fetchone()
    if sub is None:
        raise SandboxError(404, "Not found", f"order {order_id} has no submission {sub_id}")
    return order, sub


def _require_submitted(sub: sqlite3.Row, verb: str) -> None:
    if sub["status"] != "submitted":
        raise SandboxError(
            409,
            "Submission already reviewed",
            f"submission {sub['id']} is {sub['status']}: it cannot be {verb} now",
        )


def _review(conn: sqlite3.Connection, sub_id: str, status: str, note: str) -> None:
    conn.execute(
        "UPDATE submissions SET status = ?, review_note = ?, updated_at = ? WHERE id = ?",
        (status, note, time.time(), sub_id),
    )


def _set_slot(conn: sqlite3.Connection, order_id: str, idx: int, state: str) -> None:
    conn.execute(
        "UPDATE slots SET state = ?, due_at = NULL WHERE order_id = ? AND idx = ?",
        (state, order_id, idx),
    )
    refresh_status(conn, order_id)


def _set_status(conn: sqlite3.Connection, order_id: str, status: str) -> None:
    conn.execute(
        "UPDATE orders SET status = ?, updated_at = ? WHERE id = ?",
        (status, time.time(), order_id),
    )


def refresh_status(conn: sqlite3.Connection, order_id: str) -> str:
    """Derive the order's status from its slots (cancelled and expired stay as they are)."""
    current = fetch_order(conn, order_id)["status"]
    if current in ("cancelled", "expired"):
        return current
    states = [
        r["state"] for r in conn.execute("SELECT state FROM slots WHERE order_id = ?", (order_id,))
    ]
    if states and all(s in ("accepted", "rejected", "expired") for s in states):
        if "accepted" in states:
            status = "completed"
        else:
            status = "expired" if "expired" in states else "cancelled"
    elif any(s in ("submitted", "accepted") for s in states):
        status = "delivered"
    elif any(s in ("working", "revising", "rejected") for s in states):
        status = "taken"
    else:
        status = "open"
    if status != current:
        _set_status(conn, order_id, status)
    return status
