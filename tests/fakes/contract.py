"""What the shared adapter contract test needs from each adapter's fake platform.

Every adapter registered under ``dispatcher.adapters`` must have an entry in CONTRACT_FAKES:
a function that starts its fake (a real server on loopback) and returns a `ContractFake`.
Adding an adapter? Add a fake here, or tests/adapters/test_contract.py fails by name.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from adapters import standard_webhooks
from adapters.base import Adapter, JobSpec
from adapters.microworkers import MicroworkersAdapter
from adapters.sandbox import SandboxAdapter
from fakes.microworkers import API_KEY as MW_KEY
from fakes.microworkers import FakeMicroworkers
from fakes.sandbox_fixture import SECRET, make_settings, sandbox_account, start_sandbox


@dataclass
class ContractFake:
    """One adapter wired to its running fake platform, plus the fake's signer and records."""

    adapter: Adapter
    #: a platform status word the adapter maps to a known EventKind, and one it cannot know
    known_status: str
    unknown_status: str
    #: build a webhook for `status` about order `external_id`, signed as the platform would;
    #: `timestamp` (unix s) and `secret` let the test forge stale or wrongly signed ones
    signed_event: Callable[..., tuple[dict[str, str], bytes]]
    #: how many orders the fake platform holds under an idempotency key (its own records)
    orders_under_key: Callable[[str], int]
    #: make the fake show a change with platform status word `status` on order
    #: `external_id`, for `poll` to read (None: the adapter is not polled)
    make_change: Callable[[str, str], None] | None = None
    #: what this platform needs in a job that the defaults below do not give
    job_overrides: dict[str, Any] = field(default_factory=dict)

    def job(self, **overrides: Any) -> JobSpec:
        values: dict[str, Any] = {
            "job_id": 7,
            "title": "Write a guest post about sourdough",
            "brief": "800 words, friendly tone",
            "acceptance_criteria": ("mentions the starter", "links back"),
            "deliverable_kind": "url",
            "price_cents": 2500,
            "currency": "USD",
            "assignments": 1,
            "due_date": date(2030, 1, 31),
            "callback_url": "",
        }
        values.update(self.job_overrides)
        values.update(overrides)
        return JobSpec(**values)


@contextmanager
def sandbox_fake(tmp_path: Path) -> Iterator[ContractFake]:
    running = start_sandbox(tmp_path / "sandbox.db", pause_workers=True)
    adapter = SandboxAdapter(
        make_settings(tmp_path, sandbox_url=running.base_url),
        credentials={"api_key": sandbox_account(running.base_url), "webhook_secret": SECRET},
    )

    def signed_event(
        status: str,
        external_id: str,
        timestamp: int | None = None,
        secret: str = SECRET,
    ) -> tuple[dict[str, str], bytes]:
        event_id = f"evt_{secrets.token_hex(8)}"
        payload = {
            "id": event_id,
            "type": status,
            "created_at": datetime.now(UTC).isoformat(),
            "data": {
                "order_id": external_id,
                "client_ref": "job-7",
                "submission_id": "sub_contract",
                "worker_id": "wrk_contract",
                "content": "Delivered: contract",
                "url": None,
                "status": "delivered",
            },
        }
        body = json.dumps(payload).encode()
        ts = int(time.time()) if timestamp is None else timestamp
        return standard_webhooks.sign(secret, event_id, ts, body), body

    def make_change(external_id: str, status: str) -> None:
        with running.market.store.tx() as conn:
            running.market.emit(conn, external_id, status, time.time(), worker_id="wrk_contract")

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="order.delivered",
            unknown_status="order.teleported",
            signed_event=signed_event,
            orders_under_key=lambda key: running.stats()["orders_by_key"].get(key, 0),
            make_change=make_change,
        )
    finally:
        adapter.session.close()
        running.stop()


@contextmanager
def microworkers_fake(tmp_path: Path) -> Iterator[ContractFake]:
    fake = FakeMicroworkers().start()
    adapter = MicroworkersAdapter(
        make_settings(tmp_path),
        credentials={"api_key": MW_KEY},
        options={"base_url": fake.url, "template_id": "tpl-contract"},
    )

    def no_webhooks(*args: Any, **kwargs: Any) -> tuple[dict[str, str], bytes]:
        raise AssertionError("Microworkers sends no webhooks")

    def make_change(external_id: str, status: str) -> None:
        [slot] = fake.take(external_id, 1)
        if status == "NOTRATED":
            fake.submit(slot, "contract answer")
        elif status != "ALLOCATED":
            fake.set_status(slot, status)

    def orders_under_key(key: str) -> int:
        return sum(1 for c in fake.campaigns.values() if c["title"].endswith(f"[{key}]"))

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="NOTRATED",
            unknown_status="TELEPORTED",
            signed_event=no_webhooks,
            orders_under_key=orders_under_key,
            make_change=make_change,
            job_overrides={"assignments": 30, "price_cents": 50},
        )
    finally:
        adapter.session.close()
        fake.stop()


@contextmanager
def email_fake(tmp_path: Path) -> Iterator[ContractFake]:
    """Email places no remote order (the brief goes through the outbox): an order is the
    local receipt `dispatch` returns, so the same key must always give the same one."""
    from aiosmtpd.controller import Controller
    from security.mailbox import Inbox, free_port

    from adapters.email import EmailAdapter

    port = free_port()
    controller = Controller(Inbox(), hostname="127.0.0.1", port=port)
    controller.start()
    adapter = EmailAdapter(make_settings(tmp_path, smtp_url=f"smtp://127.0.0.1:{port}"))
    receipts: dict[str, set[str]] = {}
    dispatch = adapter.dispatch

    def recording(job: JobSpec, key: str):
        receipt = dispatch(job, key)
        receipts.setdefault(key, set()).add(receipt.external_id)
        return receipt

    adapter.dispatch = recording  # type: ignore[method-assign]

    def no_webhooks(*args: Any, **kwargs: Any) -> tuple[dict[str, str], bytes]:
        raise AssertionError("email takes no webhooks: replies come through the page")

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="submit",
            unknown_status="teleport",
            signed_event=no_webhooks,
            orders_under_key=lambda key: len(receipts.get(key, ())),
        )
    finally:
        adapter.session.close()
        controller.stop()


CONTRACT_FAKES: dict[str, Callable[[Path], Any]] = {
    "sandbox": sandbox_fake,
    "microworkers": microworkers_fake,
    "email": email_fake,
}
