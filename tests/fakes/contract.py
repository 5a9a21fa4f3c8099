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
from urllib.parse import parse_qs

from adapters import boards, standard_webhooks
from adapters.asana import AsanaAdapter
from adapters.base import Adapter, JobSpec
from adapters.microworkers import MicroworkersAdapter
from adapters.sandbox import SandboxAdapter
from adapters.slack import SlackAdapter
from adapters.trello import TrelloAdapter
from adapters.webhook_channel import WebhookChannelAdapter
from fakes import asana, trello
from fakes.asana import FakeAsana
from fakes.microworkers import API_KEY as MW_KEY
from fakes.microworkers import FakeMicroworkers
from fakes.sandbox_fixture import SECRET, make_settings, sandbox_account, start_sandbox
from fakes.slack import FakeSlack
from fakes.teammate_endpoint import TeammateEndpoint, callback
from fakes.trello import FakeTrello


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
    #: the platform's payload inside a webhook body (Slack's is a form field)
    payload_of: Callable[[bytes], Any] = json.loads
    #: whether the platform's signature covers a time (Asana's does not, and it retries a
    #: delivery for a day: a replay is de-duplicated instead, by the body's hash)
    signs_time: bool = True

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
def slack_fake(tmp_path: Path) -> Iterator[ContractFake]:
    fake = FakeSlack().start()
    adapter = SlackAdapter(
        make_settings(tmp_path, outbound_allowlist=(fake.hostport,)),
        credentials={"webhook_url": fake.webhook_url, "signing_secret": fake.signing_secret},
    )

    def signed_event(
        status: str, external_id: str, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        button = {"type": "button", "text": {"type": "plain_text", "text": "Press"},
                  "action_id": status, "value": external_id}  # fmt: skip
        message = {"text": "a job", "blocks": [{"type": "actions", "elements": [button]}]}
        return fake.press(message, "Press", timestamp=timestamp, secret=secret)

    def orders_under_key(key: str) -> int:
        # Slack has no idempotency: a repeated post is a second message about the same
        # order (tests/adapters/test_slack.py says so); orders are the ids the buttons carry
        return len({b.get("value") for m in fake.messages for b in _buttons(m)} & {f"slack-{key}"})

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="dispatcher.take",
            unknown_status="someone.elses_button",
            signed_event=signed_event,
            orders_under_key=orders_under_key,
            payload_of=lambda body: json.loads(parse_qs(body.decode())["payload"][0]),
        )
    finally:
        adapter.session.close()
        fake.stop()


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks", []) for e in b.get("elements", [])]


@contextmanager
def webhook_fake(tmp_path: Path) -> Iterator[ContractFake]:
    endpoint = TeammateEndpoint(SECRET).start()
    adapter = WebhookChannelAdapter(
        make_settings(tmp_path, outbound_allowlist=(endpoint.hostport,)),
        credentials={"webhook_secret": SECRET},
        options={"endpoint_url": endpoint.url},
    )

    def signed_event(
        status: str, external_id: str, timestamp: int | None = None, secret: str = SECRET
    ) -> tuple[dict[str, str], bytes]:
        when = datetime.fromtimestamp(timestamp, UTC) if timestamp else None
        data = {"order_id": external_id, "content": "Delivered: contract", "url": None}
        return callback(secret, status, data, when=when)

    def orders_under_key(key: str) -> int:
        # the receiver de-duplicates on webhook-id, as Standard Webhooks asks
        order = f"webhook-{key}"
        return sum(1 for e in endpoint.events.values() if e["data"]["order_id"] == order)

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="job.delivered",
            unknown_status="job.teleported",
            signed_event=signed_event,
            orders_under_key=orders_under_key,
        )
    finally:
        adapter.session.close()
        endpoint.stop()


@contextmanager
def trello_fake(tmp_path: Path) -> Iterator[ContractFake]:
    fake = FakeTrello().start()
    adapter = TrelloAdapter(
        make_settings(tmp_path, trello_api_base=fake.url),
        credentials={"api_key": trello.API_KEY, "token": trello.TOKEN,
                     "app_secret": trello.APP_SECRET},
        options={"board_id": trello.BOARD, "list_id": trello.TODO, "done_list_id": trello.DONE},
    )  # fmt: skip
    adapter.webhook_url = "http://127.0.0.1:9/webhooks/trello/contract"

    def signed_event(
        status: str, external_id: str, timestamp: int | None = None, secret: str = trello.APP_SECRET
    ) -> tuple[dict[str, str], bytes]:
        when = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), UTC)
        card = {"id": external_id, "name": "Guest post", "idShort": 1, "shortLink": "abcd1234"}
        action = {
            "id": secrets.token_hex(12),
            "type": status,
            "date": when.isoformat().replace("+00:00", "Z"),
            "data": {
                "card": card,
                "listBefore": {"id": trello.TODO, "name": "To do"},
                "listAfter": {"id": trello.DONE, "name": "Done"},
            },
            "memberCreator": dict(trello.BOB),
        }
        body = json.dumps({"action": action, "model": {"id": trello.BOARD}}).encode()
        return {"X-Trello-Webhook": trello.sign(body, adapter.webhook_url, secret)}, body

    def orders_under_key(key: str) -> int:
        return sum(1 for c in fake.cards.values() if boards.has_ref(c["desc"], key))

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="updateCard",
            unknown_status="teleportCard",
            signed_event=signed_event,
            orders_under_key=orders_under_key,
        )
    finally:
        adapter.session.close()
        fake.stop()


ASANA_HOOK_SECRET = "asana-hook-secret-contract"


@contextmanager
def asana_fake(tmp_path: Path) -> Iterator[ContractFake]:
    fake = FakeAsana().start()
    adapter = AsanaAdapter(
        make_settings(tmp_path, asana_api_base=fake.url),
        credentials={"token": asana.TOKEN, "hook_secret": ASANA_HOOK_SECRET},
        options={"project_gid": asana.PROJECT},
    )

    def signed_event(
        status: str, external_id: str, timestamp: int | None = None, secret: str = ASANA_HOOK_SECRET
    ) -> tuple[dict[str, str], bytes]:
        when = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), UTC)
        resource_type, _, action = status.partition(".")
        event = {
            "user": {"gid": asana.BOB["gid"], "resource_type": "user"},
            "created_at": when.isoformat().replace("+00:00", "Z"),
            "action": action,
            "resource": {"gid": external_id, "resource_type": resource_type},
            "parent": None,
            "change": {"field": "completed", "action": "changed"},
        }
        body = json.dumps({"events": [event]}).encode()
        return {"X-Hook-Signature": asana.sign(body, secret)}, body

    def orders_under_key(key: str) -> int:
        return sum(1 for t in fake.tasks.values() if boards.has_ref(t["notes"], key))

    try:
        yield ContractFake(
            adapter=adapter,
            known_status="task.changed",
            unknown_status="task.teleported",
            signed_event=signed_event,
            orders_under_key=orders_under_key,
            signs_time=False,
        )
    finally:
        adapter.session.close()
        fake.stop()


@contextmanager
def email_fake(tmp_path: Path) -> Iterator[ContractFake]:
    """Email places no remote order (the brief goes through the outbox): an order is the
    local receipt `dispatch` returns, so the same key must always give the same one."""
    from aiosmtpd.controller import Controller

    from adapters.email import EmailAdapter
    from fakes.smtp import Inbox, free_port

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
    "slack": slack_fake,
    "webhook": webhook_fake,
    "trello": trello_fake,
    "asana": asana_fake,
    "email": email_fake,
}
