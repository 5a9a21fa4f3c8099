"""Concurrent clients against the running sandbox: one key, one order, whatever the timing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from fakes.sandbox_fixture import sandbox_account

BODY = {"title": "Proofread", "price_cents": 300, "currency": "USD"}


def test_concurrent_posts_with_one_key_create_one_order(sandbox):
    sandbox.control(pause_workers=True)
    api_key = sandbox_account(sandbox.base_url)

    def post(_):
        with requests.Session() as session:
            response = session.post(
                f"{sandbox.base_url}/orders",
                json=BODY,
                headers={"Idempotency-Key": "same-key", "Authorization": f"Bearer {api_key}"},
                timeout=5,
            )
            return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(post, range(16)))
    assert len({order_id for _, order_id in results}) == 1
    assert sorted(code for code, _ in results) == [200] * 15 + [201]
    stats = sandbox.stats()
    assert stats["orders"] == 1 and stats["duplicate_orders"] == 0
