"""Simulated workers: take open assignments, deliver (or withdraw), redeliver after revisions.

`step()` does whatever is due now and returns; the runner calls it in a loop, and tests may
call it directly for a deterministic sandbox. Expiry is the platform's clock, not a worker's,
so it runs even while workers are paused.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time

from dispatcher.sandbox.market import (
    ACTIVE_SLOTS,
    Marketplace,
    fetch_order,
    fetch_submission,
    new_id,
    refresh_status,
)

BATCH = 100


def step(market: Marketplace, now: float | None = None) -> int:
    """Move every due order and assignment one step; returns how many moved."""
    now = time.time() if now is None else now
    moved = _expire(market, now)
    if market.options.pause_workers:
        return moved
    due = market.store.query(
        "SELECT s.order_id, s.idx FROM slots s JOIN orders o ON o.id = s.order_id "
        "WHERE s.due_at IS NOT NULL AND s.due_at <= ? AND s.state IN (?, ?, ?) "
        "AND o.status IN ('open', 'taken', 'delivered') ORDER BY s.due_at LIMIT ?",
        (now, *ACTIVE_SLOTS, BATCH),
    )
    for row in due:
        with market.store.tx() as conn:
            slot = conn.execute(
                "SELECT * FROM slots WHERE order_id = ? AND idx = ?", (row["order_id"], row["idx"])
            ).fetchone()
            if slot["due_at"] is None or slot["due_at"] > now or slot["state"] not in ACTIVE_SLOTS:
                continue  # someone (a cancel, a review) changed it meanwhile
            if slot["state"] == "open":
                _take(market, conn, slot, now)
            elif slot["state"] == "working" and slot["withdraw"]:
                _withdraw(market, conn, slot, now)
            else:
                _deliver(market, conn, slot, now)
            moved += 1
    return moved


def _expire(market: Marketplace, now: float) -> int:
    after = market.options.expire_after
    if after is None:
        return 0
    rows = market.store.query(
        "SELECT id FROM orders WHERE status = 'open' AND created_at + ? <= ? LIMIT ?",
        (after, now, BATCH),
    )
    for row in rows:
        with market.store.tx() as conn:
            if fetch_order(conn, row["id"])["status"] != "open":
                continue
            conn.execute(
                "UPDATE slots SET state = 'expired', due_at = NULL WHERE order_id = ?", (row["id"],)
            )
            conn.execute(
                "UPDATE orders SET status = 'expired', updated_at = ? WHERE id = ?",
                (now, row["id"]),
            )
            market.emit(conn, row["id"], "order.expired", now)
    return len(rows)


def _take(market: Marketplace, conn: sqlite3.Connection, slot: sqlite3.Row, now: float) -> None:
    worker = f"wrk_{secrets.token_hex(4)}"
    withdraw = market.dice.chance(market.options.withdraw_rate)
    conn.execute(
        "UPDATE slots SET state = 'working', worker_id = ?, withdraw = ?, due_at = ? "
        "WHERE order_id = ? AND idx = ?",
        (worker, int(withdraw), now + market.options.deliver_delay, slot["order_id"], slot["idx"]),
    )
    refresh_status(conn, slot["order_id"])
    market.emit(conn, slot["order_id"], "order.taken", now, worker_id=worker, slot=slot["idx"])


def _withdraw(market: Marketplace, conn: sqlite3.Connection, slot: sqlite3.Row, now: float):
    """The worker gives the assignment back; it is open again for someone else."""
    conn.execute(
        "UPDATE slots SET state = 'open', worker_id = NULL, withdraw = 0, due_at = ? "
        "WHERE order_id = ? AND idx = ?",
        (now + market.options.take_delay, slot["order_id"], slot["idx"]),
    )
    refresh_status(conn, slot["order_id"])
    market.emit(
        conn, slot["order_id"], "order.withdrawn", now, worker_id=slot["worker_id"],
        slot=slot["idx"],
    )  # fmt: skip


def _deliver(market: Marketplace, conn: sqlite3.Connection, slot: sqlite3.Row, now: float):
    order = fetch_order(conn, slot["order_id"])
    fields = json.loads(order["fields"])
    sub_id = new_id("sub")
    if slot["state"] == "revising":
        content = f"Revised: {fields['title']} (after feedback: {slot['note']})"
    else:
        content = f"Delivered: {fields['title']}"
    url = None
    if fields["deliverable_kind"] in ("url", "file"):
        url = f"{market.base_url or 'http://127.0.0.1'}/deliveries/{sub_id}"
    conn.execute(
        "INSERT INTO submissions (id, order_id, slot, worker_id, content, url, status, "
        "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'submitted', ?, ?)",
        (sub_id, order["id"], slot["idx"], slot["worker_id"], content, url, now, now),
    )
    conn.execute(
        "UPDATE slots SET state = 'submitted', due_at = NULL WHERE order_id = ? AND idx = ?",
        (order["id"], slot["idx"]),
    )
    refresh_status(conn, order["id"])
    market.emit(
        conn, order["id"], "order.delivered", now, submission=fetch_submission(conn, sub_id)
    )
