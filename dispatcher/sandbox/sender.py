"""Delivers the sandbox's events to each order's callback_url, the way real senders do.

Standard Webhooks signatures (a fresh timestamp per attempt, the same webhook-id on every
redelivery), retries with exponential backoff on connection errors and non-2xx answers, every
attempt recorded. Fault knobs: some events sent twice, or held and sent newest first.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import requests

from adapters.standard_webhooks import sign
from dispatcher.sandbox.market import Marketplace

USER_AGENT = "dispatcher-sandbox-webhooks/1"


class WebhookSender:
    def __init__(self, market: Marketplace, session: requests.Session | None = None):
        self.market = market
        self.session = session or requests.Session()
        self._lock = threading.Lock()  # one delivery pass at a time: no event sent in parallel

    def send_due(self, now: float | None = None) -> int:
        """Attempt every event that is due; returns the number of attempts made."""
        with self._lock:
            now = time.time() if now is None else now
            rows = self.market.store.query(
                "SELECT e.*, o.callback_url, a.webhook_url, a.webhook_secret FROM events e "
                "JOIN orders o ON o.id = e.order_id LEFT JOIN accounts a ON a.id = o.account_id "
                "WHERE e.state = 'pending' AND e.next_attempt_at <= ? ORDER BY e.seq LIMIT 200",
                (now,),
            )
            if self.market.options.reorder_webhooks:
                rows = self._reordered(rows, now)
            for row in rows:
                self._attempt(row)
            return len(rows)

    def _reordered(self, rows: list, now: float) -> list:
        """Hold each order's events until a later one exists (or the hold runs out), then
        release them newest first: a delivered arrives before its taken."""
        by_order: dict[str, list] = defaultdict(list)
        for row in rows:
            by_order[row["order_id"]].append(row)
        released = []
        for events in by_order.values():
            only_taken = all(e["type"] == "order.taken" for e in events)
            oldest = min(e["created_at"] for e in events)
            if only_taken and now - oldest < self.market.options.reorder_max_hold:
                continue
            released.extend(sorted(events, key=lambda e: e["seq"], reverse=True))
            if len(events) > 1:
                self.market.store.bump("webhooks_reordered", len(events) - 1)
        return released

    def _attempt(self, row) -> None:
        options = self.market.options
        body = row["body"].encode("utf-8")
        status_code, error = None, None
        if not row["webhook_secret"]:
            # like a platform whose dashboard has no endpoint secret yet: nothing is signed
            ok, error = False, "the account registered no webhook secret (PUT /account/webhook)"
        else:
            headers = sign(row["webhook_secret"], row["id"], int(time.time()), body)
            headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT})
            try:
                response = self.session.post(
                    row["callback_url"] or row["webhook_url"],
                    data=body,
                    headers=headers,
                    timeout=options.webhook_timeout,
                )
                status_code = response.status_code
                ok = 200 <= status_code < 300
                if not ok:
                    error = f"HTTP {status_code}: {response.text[:200]}"
            except requests.RequestException as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"[:500]
        now = time.time()
        with self.market.store.tx() as conn:
            conn.execute(
                "INSERT INTO webhook_attempts (event_id, at, status_code, error, ok) "
                "VALUES (?, ?, ?, ?, ?)",
                (row["id"], now, status_code, error, int(ok)),
            )
            if ok:
                sent = row["sent_copies"] + 1
                state = "sent" if sent >= row["copies"] else "pending"
                conn.execute(
                    "UPDATE events SET sent_copies = ?, state = ?, next_attempt_at = ? "
                    "WHERE id = ?",
                    (sent, state, now if state == "pending" else None, row["id"]),
                )
                return
            failures = row["failures"] + 1
            if failures >= options.webhook_max_attempts:
                conn.execute(
                    "UPDATE events SET failures = ?, state = 'failed', next_attempt_at = NULL "
                    "WHERE id = ?",
                    (failures, row["id"]),
                )
            else:
                delay = options.webhook_retry_delay * 2 ** (failures - 1)
                conn.execute(
                    "UPDATE events SET failures = ?, next_attempt_at = ? WHERE id = ?",
                    (failures, now + delay, row["id"]),
                )

    def close(self) -> None:
        self.session.close()
