"""Adapter for Dispatcher's own sandbox marketplace (dispatcher/sandbox/, `dispatcher sandbox`).

API: the JSON endpoints listed in dispatcher/sandbox/app.py, at the connection's ``base_url``
option (default ``settings.sandbox_url``), authenticated with the account's ``api_key``.
Orders are created with an ``Idempotency-Key`` header (Stripe's model: same key and body ->
the same order; the key can be looked up with ``GET /orders?idempotency_key=``).
Webhooks: Standard Webhooks (``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``)
signed with the connection's own secret, which `register_webhook` gives the sandbox account
(as a platform dashboard would keep it); one event per body.

Mapped: order.taken, order.delivered, order.withdrawn, order.expired, submission.paid (see
STATUS_MAP). Anything else becomes EventKind.UNKNOWN with the platform's word kept in
``platform_status``; the intake decides what to do with it. Review decisions: the sandbox
answers a repeated identical accept / reject / revision with 200 (a no-op), a different one
with 409; ``decision`` reads what a submission holds from ``GET /orders/<id>`` (see
DECISION_MAP). Copy this module when adding a platform that pushes webhooks (see
docs/adapters.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from adapters import standard_webhooks
from adapters.base import (
    Adapter,
    Capability,
    DeliveryRef,
    EventKind,
    HeldDecision,
    JobSpec,
    NormalizedEvent,
    PollPage,
    Receipt,
)
from dispatcher.errors import AdapterError, PayloadError, SignatureError

#: The sandbox's event types, in our words. Unknown types map to EventKind.UNKNOWN.
STATUS_MAP: dict[str, EventKind] = {
    "order.taken": EventKind.TAKEN,
    "order.delivered": EventKind.DELIVERED,
    "order.withdrawn": EventKind.WITHDRAWN,
    "order.expired": EventKind.EXPIRED,
    "submission.paid": EventKind.PAID,
}

#: A submission's status at the sandbox, as the review decision it records. "submitted" (not
#: reviewed yet) and any status not listed mean no decision.
DECISION_MAP: dict[str, str] = {
    "accepted": "accept",
    "rejected": "reject",
    "revision_requested": "revise",
}


class SandboxAdapter(Adapter):
    name = "sandbox"
    title = "Sandbox marketplace"
    capabilities = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.POLL,
            Capability.CANCEL,
            Capability.REVISION,
            Capability.FIND,
            Capability.REDUNDANCY,
        }
    )
    notice = (
        "A simulated marketplace for demos and tests: its workers are scripts, its money is "
        "not real. Make an account on it (POST /accounts) and paste its API key here."
    )
    credential_fields = ("api_key",)
    option_fields = ("base_url", "polling")

    # -- account ------------------------------------------------------------------------
    def check(self) -> str:
        response = self.request("GET", self._url("account"))
        account = self.json_object(response)
        return f"sandbox account {account.get('name', '?')} ({account.get('id', '?')})"

    def register_webhook(self, url: str, secret: str) -> None:
        self.request("PUT", self._url("account", "webhook"), json={"url": url, "secret": secret})

    # -- outbound -----------------------------------------------------------------------
    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        body = {
            "title": job.title,
            "brief": job.brief,
            "acceptance_criteria": list(job.acceptance_criteria),
            "deliverable_kind": job.deliverable_kind,
            "price_cents": job.price_cents,
            "currency": job.currency,
            "assignments": job.assignments,
            # a polled connection asks for no webhooks: the sandbox then sends none
            "callback_url": "" if self.options.get("polling") else job.callback_url,
            "client_ref": f"job-{job.job_id}",
            "due_date": job.due_date.isoformat() if job.due_date else None,
        }
        response = self.request(
            "POST", self._url("orders"), json=body, headers={"Idempotency-Key": idempotency_key}
        )
        return self._receipt(self.json_object(response))

    def find(self, idempotency_key: str) -> Receipt | None:
        response = self.request(
            "GET", self._url("orders"), params={"idempotency_key": idempotency_key}
        )
        orders = self.json_object(response).get("orders")
        if not isinstance(orders, list):
            raise AdapterError(self.name, "order look-up answered without an orders list")
        return self._receipt(orders[0]) if orders else None

    def cancel(self, external_id: str) -> None:
        self.request("POST", self._url("orders", external_id, "cancel"))

    def poll(self, external_id: str, cursor: str | None = None) -> PollPage:
        response = self.request("GET", self._url("orders", external_id, "events"))
        events = self.json_object(response).get("events")
        if not isinstance(events, list):
            raise AdapterError(self.name, "events answer has no events list")
        return PollPage(events=tuple(self._event(payload) for payload in events))

    def accept(self, delivery: DeliveryRef, payout_cents: int) -> None:
        self._review(delivery, "accept", {"payout_cents": payout_cents})

    def reject(self, delivery: DeliveryRef, reason: str) -> None:
        self._review(delivery, "reject", {"reason": reason})

    def request_revision(self, delivery: DeliveryRef, feedback: str) -> None:
        self._review(delivery, "revision", {"feedback": feedback})

    def decision(self, delivery: DeliveryRef) -> HeldDecision | None:
        response = self.request("GET", self._url("orders", delivery.external_order_id))
        submissions = self.json_object(response).get("submissions")
        if not isinstance(submissions, list):
            raise AdapterError(self.name, "order answer has no submissions list")
        for sub in submissions:
            if isinstance(sub, dict) and sub.get("id") == delivery.external_delivery_id:
                decision = DECISION_MAP.get(sub.get("status"))
                if decision is None:
                    return None
                payout = sub.get("payout_cents")
                return HeldDecision(
                    decision=decision,
                    payout_cents=payout if isinstance(payout, int) else None,
                    raw=sub,
                )
        order, sub = delivery.external_order_id, delivery.external_delivery_id
        raise AdapterError(self.name, f"order {order} has no submission {sub}", status=404)

    # -- inbound ------------------------------------------------------------------------
    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.credentials.get("webhook_secret")
        if not secret:
            raise SignatureError("this connection has no webhook secret")
        standard_webhooks.verify(
            secret,
            headers,
            body,
            tolerance=self.settings.webhook_tolerance_seconds,
        )

    def event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        for key, value in headers.items():
            if key.lower() == standard_webhooks.ID_HEADER and value.strip():
                return value.strip()
        raise SignatureError(f"missing {standard_webhooks.ID_HEADER} header")

    def parse(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"sandbox webhook body is not JSON: {exc}") from exc
        return [self._event(payload)]

    # -- helpers --------------------------------------------------------------------------
    def _url(self, *parts: str) -> str:
        base = str(self.options.get("base_url") or self.settings.sandbox_url).rstrip("/")
        return base + "/" + "/".join(quote(p, safe="") for p in parts)

    def request(self, method: str, url: str, **kwargs: Any):
        """Every call carries the account's key (never logged: errors keep only the body)."""
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self.credentials.get('api_key', '')}"
        return super().request(method, url, headers=headers, **kwargs)

    def _review(self, delivery: DeliveryRef, action: str, body: dict[str, Any]) -> None:
        url = self._url(
            "orders",
            delivery.external_order_id,
            "submissions",
            delivery.external_delivery_id,
            action,
        )
        self.request("POST", url, json=body)

    def _receipt(self, order: Any) -> Receipt:
        if not isinstance(order, dict) or not isinstance(order.get("id"), str):
            raise AdapterError(self.name, "order answer has no id", body=str(order)[:300])
        return Receipt(external_id=order["id"], url=order.get("url") or "", raw=order)

    def _event(self, payload: Any) -> NormalizedEvent:
        """One sandbox event (webhook body or poll item) as a NormalizedEvent."""
        if not isinstance(payload, dict):
            raise PayloadError("sandbox event is not a JSON object")
        event_id, type_, created = payload.get("id"), payload.get("type"), payload.get("created_at")
        data = payload.get("data")
        for field, value in (("id", event_id), ("type", type_), ("created_at", created)):
            if not isinstance(value, str) or not value:
                raise PayloadError(f"sandbox event has no {field}")
        if not isinstance(data, dict):
            raise PayloadError("sandbox event has no data object")
        order_id = data.get("order_id")
        if not isinstance(order_id, str) or not order_id:
            raise PayloadError("sandbox event has no data.order_id")
        try:
            occurred = datetime.fromisoformat(created)
        except ValueError as exc:
            raise PayloadError(f"sandbox event created_at {created!r} is not ISO-8601") from exc
        if occurred.tzinfo is None:
            occurred = occurred.replace(tzinfo=UTC)
        return NormalizedEvent(
            kind=STATUS_MAP.get(type_, EventKind.UNKNOWN),
            event_id=event_id,
            external_id=order_id,
            occurred_at=occurred,
            raw=payload,
            delivery_id=_text(data.get("submission_id")) or None,
            content=_text(data.get("content")),
            url=_text(data.get("url")) or None,
            worker=_text(data.get("worker_id")),
            platform_status=type_,
            assignment_ref=_slot(data.get("slot")),
            payout_cents=data.get("payout_cents") if _whole(data.get("payout_cents")) else None,
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _slot(value: Any) -> str:
    """The sandbox's place number within its order, as our assignment reference."""
    return f"slot-{value}" if _whole(value) else ""
