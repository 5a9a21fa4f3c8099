"""Webhook teammate channel: for a teammate (or a small agency) with their own system. Jobs go to
their endpoint, and their answers come back to this connection's webhook URL, both signed the
Standard Webhooks way (https://www.standardwebhooks.com/, adapters/standard_webhooks.py) with
the connection's own secret.

Outbound (our format, documented in docs/adapters.md and the API docs): ``POST`` to the
person's ``endpoint_url`` (else the connection's ``endpoint_url`` option) a JSON body
``{"type", "timestamp", "data"}``; ``job.assigned`` carries the job (order id, job id, title,
brief, criteria, due date, pay, submission URL, person), and notices go as
``job.revision_requested``, ``job.answer``, ``job.reminder``, ``job.accepted``,
``job.rejected`` (NOTICE_TYPES). The ``webhook-id`` is derived from the idempotency key (a
notice: its outbox key), so a retried delivery has the same id and their side can
de-duplicate; a 2xx is success, a 410 means they switched the endpoint off (permanent).

Inbound (STATUS_MAP): ``job.taken`` -> TAKEN, ``job.delivered`` (``content``, ``url``) ->
DELIVERED, ``job.question`` (``content``) -> MESSAGE, ``job.declined`` -> RETURNED; any other
type -> UNKNOWN (stored as ignored, answered 2xx). ``data.order_id`` names the order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from adapters import standard_webhooks
from adapters.base import (
    Capability,
    EventKind,
    JobSpec,
    NormalizedEvent,
    Notice,
    PersonRef,
    Receipt,
)
from adapters.owner_urls import OwnerURLAdapter
from adapters.teammate import TeammateAdapter
from dispatcher.errors import AdapterError, PayloadError, SignatureError
from dispatcher.security.outbound import UnsafeURL, check_url

#: their event types, in our words; anything else maps to EventKind.UNKNOWN
STATUS_MAP: dict[str, EventKind] = {
    "job.taken": EventKind.TAKEN,
    "job.delivered": EventKind.DELIVERED,
    "job.question": EventKind.MESSAGE,
    "job.declined": EventKind.RETURNED,
}

#: a Notice's kind, as the event type we send; other kinds go as "job.notice"
NOTICE_TYPES: dict[str, str] = {
    "revision": "job.revision_requested",
    "answer": "job.answer",
    "reminder": "job.reminder",
    "accepted": "job.accepted",
    "rejected": "job.rejected",
}
ASSIGNED = "job.assigned"


class WebhookChannelAdapter(OwnerURLAdapter, TeammateAdapter):
    name = "webhook"
    title = "Webhook (a teammate's own system)"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.REVISION})
    option_fields = ("endpoint_url",)
    notice = (
        "For a teammate whose own system takes jobs: each job is POSTed to their endpoint "
        "(the person's, else the one given here) signed the Standard Webhooks way with this "
        "connection's secret; they send job.taken, job.delivered, job.question and "
        "job.declined back to this connection's webhook URL, signed with the same secret."
    )

    @classmethod
    def validate_connection(
        cls, settings: Any, credentials: Mapping[str, str], options: Mapping[str, Any]
    ) -> None:
        endpoint = options.get("endpoint_url")
        if endpoint:
            check_url(str(endpoint), settings, field="endpoint_url")

    # -- outbound -----------------------------------------------------------------------
    def check(self) -> str:
        endpoint = self.options.get("endpoint_url")
        if not endpoint:
            return "no default endpoint: each job goes to its person's endpoint URL"
        try:
            check_url(str(endpoint), self.settings)
        except UnsafeURL as exc:
            raise AdapterError(self.name, f"endpoint URL refused: {exc}") from exc
        return "endpoint URL is safe to call; nothing was sent (there is no test event)"

    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        order_id = f"webhook-{idempotency_key}"
        data = job_data(job, order_id)
        endpoint = self._endpoint(job.person)
        self._send(endpoint, ASSIGNED, data, message_id(ASSIGNED, idempotency_key))
        return Receipt(external_id=order_id, raw={"endpoint": endpoint})

    def notify(self, notice: Notice) -> None:
        type_ = NOTICE_TYPES.get(notice.kind, "job.notice")
        data = {
            "order_id": notice.external_id,
            "job_id": notice.job_id,
            "kind": notice.kind,
            "subject": notice.subject,
            "text": notice.text,
            "submission_url": notice.submission_url or None,
        }
        self._send(self._endpoint(notice.person), type_, data, message_id(type_, notice.key))

    def reaches(self, person: PersonRef) -> str:
        if person.endpoint_url or self.options.get("endpoint_url"):
            return ""
        return f"{person.name} has no endpoint URL and this connection names none: add one first"

    def _endpoint(self, person: PersonRef | None) -> str:
        endpoint = (person.endpoint_url if person else "") or self.options.get("endpoint_url")
        if not endpoint:
            raise AdapterError(
                self.name, "no endpoint: give the person an endpoint URL, or the connection one"
            )
        return str(endpoint)

    def _send(self, endpoint: str, type_: str, data: dict[str, Any], msg_id: str) -> None:
        secret = self.credentials.get("webhook_secret")
        if not secret:
            raise AdapterError(self.name, "this connection has no signing secret")
        now = datetime.now(UTC)
        body = json.dumps(
            {"type": type_, "timestamp": now.isoformat(), "data": data}, separators=(",", ":")
        ).encode()
        headers = standard_webhooks.sign(secret, msg_id, now, body)
        headers["Content-Type"] = "application/json"
        self.request("POST", endpoint, data=body, headers=headers)

    # -- inbound ------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.credentials.get("webhook_secret")
        if not secret:
            raise SignatureError("this connection has no webhook secret")
        standard_webhooks.verify(
            secret, headers, body, tolerance=self.settings.webhook_tolerance_seconds
        )

    def callback_event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        for key, value in headers.items():
            if key.lower() == standard_webhooks.ID_HEADER and value.strip():
                return value.strip()
        raise SignatureError(f"missing {standard_webhooks.ID_HEADER} header")

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"webhook body is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise PayloadError("webhook body is not a JSON object")
        type_, data = payload.get("type"), payload.get("data")
        if not isinstance(type_, str) or not type_:
            raise PayloadError("webhook body has no type")
        if not isinstance(data, dict):
            raise PayloadError("webhook body has no data object")
        kind = STATUS_MAP.get(type_, EventKind.UNKNOWN)
        order_id = data.get("order_id")
        if kind is not EventKind.UNKNOWN and not (isinstance(order_id, str) and order_id):
            raise PayloadError(f"{type_} has no data.order_id")
        event_id = self.event_id(headers, body)
        url = _text(data.get("url")) or None
        return [
            NormalizedEvent(
                kind=kind,
                event_id=event_id,
                external_id=order_id if isinstance(order_id, str) else "",
                occurred_at=_when(payload.get("timestamp")),
                raw=payload,
                delivery_id=(_text(data.get("submission_id")) or event_id)
                if kind is EventKind.DELIVERED
                else None,
                content=_text(data.get("content")),
                url=url,
                worker=_text(data.get("worker")),
                platform_status=type_,
            )
        ]


def job_data(job: JobSpec, order_id: str) -> dict[str, Any]:
    """The ``data`` of a ``job.assigned`` event: everything their system needs, no more."""
    person = job.person
    return {
        "order_id": order_id,
        "job_id": job.job_id,
        "title": job.title,
        "brief": job.brief,
        "acceptance_criteria": list(job.acceptance_criteria),
        "deliverable_kind": job.deliverable_kind,
        "due_date": job.due_date.isoformat() if job.due_date else None,
        "pay": {"amount_cents": job.price_cents, "currency": job.currency},
        "submission_url": job.submission_url or None,
        "person": {"name": person.name, "email": person.email} if person else None,
    }


def message_id(type_: str, key: str) -> str:
    """A stable ``webhook-id``: the same event about the same key always has the same id."""
    return "msg_" + hashlib.sha256(f"{type_}\0{key}".encode()).hexdigest()[:32]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _when(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return datetime.now(UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
