"""Adapter for Microworkers (API v2, https://api2docs.microworkers.com).

Calls: ``POST /basic-campaigns`` (a job is one basic campaign, its assignments the campaign's
``availablePositions``), ``GET /basic-campaigns`` (paged; finding a campaign again),
``GET /basic-campaigns/{id}/slots`` (paged with ``pageSize`` / ``nextPageToken``: what we
poll), ``GET /slots/{id}`` and ``PUT /slots/{id}/rate`` (OK / NOK / REVISE, optional bonus).
Authentication: the ``MicroworkersApiKey`` header, from the connection's ``api_key``.

No webhooks (the platform notifies through Amazon SQS only), so the adapter is polled. No
idempotency key either: the campaign title carries ``[<idempotency key>]`` and `dispatch`
searches for it before creating, so a retry adopts the campaign made by an earlier attempt.
The v2 API has no documented way to stop a campaign (PATCH changes settings only), so there is
no cancel: the owner is told to stop it on the site.

Mapped (STATUS_MAP): a slot ALLOCATED is taken, NOTRATED delivered, OK that we did not send
(auto-approval after ``ttr`` days) approved, NOK rejected, EXPIRED returned. The docs do not
list the slot status words: these are our reading, to be checked against a live account.
Anything else becomes EventKind.UNKNOWN with the word kept in ``platform_status``.
Microworkers cannot take fewer than 30 positions: smaller jobs are refused for good.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

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
from dispatcher.errors import AdapterError, PayloadError

#: A slot's status at Microworkers, in our words. Unknown words map to EventKind.UNKNOWN.
#: OK reads the same whether we rated it or the platform did (auto-approval after ttr): the
#: apply step adopts an APPROVED only where we hold no acceptance of that slot yet.
STATUS_MAP: dict[str, EventKind] = {
    "ALLOCATED": EventKind.TAKEN,
    "NOTRATED": EventKind.DELIVERED,
    "OK": EventKind.APPROVED,
    "NOK": EventKind.REJECTED,
    "REVISE": EventKind.IGNORED,  # our own revision request, seen again: nothing new
    "EXPIRED": EventKind.RETURNED,
}

#: A slot's rating as the review decision it records (NOTRATED and the rest: none yet).
DECISION_MAP: dict[str, str] = {"OK": "accept", "NOK": "reject", "REVISE": "revise"}

DEFAULT_URL = "https://ttv.microworkers.com/api/v2"
MIN_POSITIONS = 30
TITLE_MAX = 100
#: 7.5 % on top of what workers are paid, as a public summary of Microworkers' pricing states
#: (mcpbundles.com/skills/microworkers, "7.5% fee on top"); confirm on the account's billing.
FEE_RATE = Decimal("0.075")
PAGE_SIZE = 100
FIND_MAX_PAGES = 20
#: a key is only looked up by retries of its own dispatch (minutes to hours after it was
#: made), so the search reads campaigns created in the last week only
FIND_WINDOW_DAYS = 7


class MicroworkersAdapter(Adapter):
    name = "microworkers"
    title = "Microworkers"
    capabilities = frozenset(
        {
            Capability.POLL,
            Capability.REDUNDANCY,
            Capability.REVISION,
            Capability.BONUS,
            Capability.FIND,
        }
    )
    credential_fields = ("api_key",)
    option_fields = (
        "base_url", "category_id", "template_id", "ttr_days", "minutes_to_finish", "polling",
    )  # fmt: skip
    secret_settings = ()

    # -- outbound -----------------------------------------------------------------------
    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        if job.assignments < MIN_POSITIONS:
            raise AdapterError(
                self.name,
                f"Microworkers campaigns need at least {MIN_POSITIONS} positions; "
                f"this job asks for {job.assignments}",
            )
        if job.currency != "USD":
            raise AdapterError(self.name, f"Microworkers pays in USD, not {job.currency}")
        found = self.find(idempotency_key)
        if found is not None:
            return found
        template = self.options.get("template_id")
        if not template:
            raise AdapterError(self.name, "the connection has no template_id option")
        body = {
            "title": _tagged_title(job.title, idempotency_key),
            "description": _description(job),
            "categoryId": str(self.options.get("category_id") or "10"),
            "availablePositions": job.assignments,
            "minutesToFinish": int(self.options.get("minutes_to_finish") or 60),
            "paymentPerTask": _dollars(job.price_cents),
            "ttr": int(self.options.get("ttr_days") or 7),
            "speed": 1000,
            "internalTemplate": {"id": str(template), "ratingMethodId": 1, "numberOfSubTasks": 1},
        }
        response = self.request("POST", self._url("basic-campaigns"), json=body)
        return self._receipt(self.json_object(response))

    def find(self, idempotency_key: str) -> Receipt | None:
        tag = f"[{idempotency_key}]"
        since = datetime.now(UTC) - timedelta(days=FIND_WINDOW_DAYS)
        token = None
        for _ in range(FIND_MAX_PAGES):
            params: dict[str, Any] = {
                "pageSize": PAGE_SIZE,
                "filter[created][op]": "gte",
                "filter[created][value]": since.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            }
            if token:
                params["nextPageToken"] = token
            data = self.json_object(
                self.request("GET", self._url("basic-campaigns"), params=params)
            )
            for campaign in _items(self.name, data):
                if isinstance(campaign.get("title"), str) and campaign["title"].endswith(tag):
                    return self._receipt(campaign)
            token = data.get("nextPageToken")
            if not token:
                return None
        raise AdapterError(self.name, f"campaign search stopped after {FIND_MAX_PAGES} pages")

    def poll(self, external_id: str, cursor: str | None = None) -> PollPage:
        params: dict[str, Any] = {"pageSize": PAGE_SIZE}
        if cursor:
            params["nextPageToken"] = cursor
        url = self._url("basic-campaigns", external_id, "slots")
        data = self.json_object(self.request("GET", url, params=params))
        events = tuple(self.slot_event(external_id, slot) for slot in _items(self.name, data))
        return PollPage(events=events, next_cursor=data.get("nextPageToken") or None)

    def accept(self, delivery: DeliveryRef, payout_cents: int) -> None:
        price = self._price_cents(delivery.external_order_id)
        if payout_cents < price:
            raise AdapterError(
                self.name, f"Microworkers pays the position price ({price} cents), no less"
            )
        body: dict[str, Any] = {"rating": "OK"}
        if payout_cents > price:
            bonus = payout_cents - price
            if not price * 0.10 <= bonus <= price * 2:
                raise AdapterError(
                    self.name,
                    f"a bonus of {bonus} cents is outside 10-200 % of the price ({price} cents)",
                )
            body["bonus"] = _dollars(bonus)
        self._rate(delivery, body)

    def reject(self, delivery: DeliveryRef, reason: str) -> None:
        self._rate(delivery, {"rating": "NOK", "comment": reason})

    def request_revision(self, delivery: DeliveryRef, feedback: str) -> None:
        self._rate(delivery, {"rating": "REVISE", "comment": feedback})

    def decision(self, delivery: DeliveryRef) -> HeldDecision | None:
        slot = self.json_object(self.request("GET", self._url("slots", _slot_id(delivery))))
        decision = DECISION_MAP.get(slot.get("status"))
        if decision is None:
            return None
        payout = None
        if decision == "accept":
            payout = _cents(slot.get("workerEarned")) + _cents(slot.get("bonusWorkerEarned"))
        return HeldDecision(decision=decision, payout_cents=payout, raw=slot)

    def check(self) -> str:
        data = self.json_object(
            self.request("GET", self._url("basic-campaigns"), params={"pageSize": 1})
        )
        return f"Microworkers answered: {len(_items(self.name, data))} campaign(s) on page 1"

    def fee_cents(self, price_cents: int) -> int:
        return math.ceil(Decimal(price_cents) * FEE_RATE)

    # -- inbound ------------------------------------------------------------------------
    def slot_event(self, campaign_id: str, slot: Any) -> NormalizedEvent:
        """One slot of a campaign as a NormalizedEvent; its id is stable while the slot
        does not change (slot id, status, and the time of the work it holds)."""
        if not isinstance(slot, dict):
            raise PayloadError("microworkers slot is not a JSON object")
        slot_id, status = slot.get("id"), slot.get("status")
        if not isinstance(slot_id, str) or not slot_id:
            raise PayloadError("microworkers slot has no id")
        if not isinstance(status, str) or not status:
            raise PayloadError(f"microworkers slot {slot_id} has no status")
        finished = _text(slot.get("finishedTime"))
        stamp = finished or _text(slot.get("allocatedTime")) or _text(slot.get("createdAt"))
        kind = STATUS_MAP.get(status, EventKind.UNKNOWN)
        payout = None
        if kind == EventKind.APPROVED:
            payout = _cents(slot.get("workerEarned")) + _cents(slot.get("bonusWorkerEarned"))
        return NormalizedEvent(
            kind=kind,
            event_id=f"mw-{slot_id}-{status}-{stamp}",
            external_id=campaign_id,
            occurred_at=_when(stamp),
            raw=slot,
            delivery_id=f"{slot_id}@{finished}" if finished else None,
            content=_answers(slot),
            url=None,
            worker=_text(slot.get("workerId")),
            platform_status=status,
            assignment_ref=slot_id,
            payout_cents=payout,
        )

    # -- helpers --------------------------------------------------------------------------
    def _url(self, *parts: str) -> str:
        base = str(self.options.get("base_url") or DEFAULT_URL).rstrip("/")
        return base + "/" + "/".join(quote(p, safe="") for p in parts)

    def request(self, method: str, url: str, **kwargs: Any):
        api_key = self.credentials.get("api_key")
        if not api_key:
            raise AdapterError(self.name, "the connection has no api_key")
        headers = {**kwargs.pop("headers", {}), "MicroworkersApiKey": api_key}
        return super().request(method, url, headers=headers, **kwargs)

    def _rate(self, delivery: DeliveryRef, body: dict[str, Any]) -> None:
        self.request("PUT", self._url("slots", _slot_id(delivery), "rate"), json=body)

    def _price_cents(self, campaign_id: str) -> int:
        campaign = self.json_object(self.request("GET", self._url("basic-campaigns", campaign_id)))
        price = campaign.get("paymentPerTask")
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise AdapterError(self.name, f"campaign {campaign_id} has no paymentPerTask")
        return _cents(price)

    def _receipt(self, campaign: Mapping[str, Any]) -> Receipt:
        campaign_id = campaign.get("id")
        if not isinstance(campaign_id, str | int) or not str(campaign_id):
            raise AdapterError(self.name, "campaign answer has no id", body=str(campaign)[:300])
        return Receipt(external_id=str(campaign_id), url="", raw=dict(campaign))


def _tagged_title(title: str, key: str) -> str:
    tag = f" [{key}]"
    return title[: max(1, TITLE_MAX - len(tag))].rstrip() + tag


def _description(job: JobSpec) -> str:
    lines = [job.brief or job.title]
    if job.acceptance_criteria:
        lines += ["", "Accepted when:"] + [f"- {c}" for c in job.acceptance_criteria]
    return "\n".join(lines)


def _dollars(cents: int) -> float:
    return float(Decimal(cents) / 100)


def _cents(amount: Any) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return 0
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _slot_id(delivery: DeliveryRef) -> str:
    return delivery.external_delivery_id.split("@", 1)[0]


def _items(platform: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = data.get("items")
    if not isinstance(items, list):
        raise AdapterError(platform, "list answer has no items array")
    return [i for i in items if isinstance(i, dict)]


def _answers(slot: Mapping[str, Any]) -> str:
    lines = []
    for task in slot.get("tasksAnswers") or []:
        for qa in (task or {}).get("questionsAnswers") or []:
            if isinstance(qa, dict) and qa.get("answer") not in (None, ""):
                lines.append(str(qa["answer"]))
    proofs = [p for p in slot.get("fileProofs") or [] if isinstance(p, str)]
    return "\n".join(lines + proofs)


def _when(stamp: str) -> datetime:
    try:
        when = datetime.fromisoformat(stamp) if stamp else datetime.now(UTC)
    except ValueError:
        raise PayloadError(f"microworkers time {stamp!r} is not ISO-8601") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
