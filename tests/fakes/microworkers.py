"""A faithful local fake of the Microworkers API v2 (api2docs.microworkers.com), a real HTTP
server on loopback that records every request.

What it checks, as the docs say: the ``MicroworkersApiKey`` header (401 otherwise); campaign
shapes (``availablePositions`` >= 30, ``ttr`` 1..30, ``speed`` 1..1000, one template);
``PUT /slots/{id}/rate`` with OK / NOK / REVISE, a comment unless OK, a bonus of 10-200 % of
the position price, only on an unrated slot (204 on success). Lists are paged with
``pageSize`` / ``nextPageToken``. Errors carry the codes of the docs' "Handle Errors" page
(``{"code": ..., "message": ...}``; the exact envelope is our assumption).

The docs do not list the slot status words. The fake uses ALLOCATED (a worker holds the
position), NOTRATED (submitted, not rated), OK, NOK, REVISE (sent back; a resubmission makes it
NOTRATED again, with a new finishedTime) and EXPIRED (the worker ran out of time).

Test controls (plain methods): `take`, `submit`, `expire`, `auto_approve` (what the platform
does to unrated slots after `ttr` days), and `set_status` for words the adapter cannot know.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from fakes.receiver import Received

API_KEY = "mw-test-key-0001"
PREFIX = "/api/v2"
MIN_POSITIONS = 30
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_TEMPLATES = ("internalTemplate", "externalTemplate")
_PATCHABLE = {
    "autoRateNokTask",
    "autoRateOkTask",
    "autoRefillPositions",
    "qtRequired",
    "successRate",
    "maximumJobLimit",
    "autoSkipTask",
    "ttr",
    "notificationSettings",
    "speed",
    "timeToWaitAfterSlotExpiration",
    "visibilityDelay",
}


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


@dataclass
class FakeMicroworkers:
    """The platform's state (campaigns, slots) in memory, behind one lock."""

    api_key: str = API_KEY
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    slots: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the next N requests are answered with this status (e.g. 503), for retry tests
    fail_next: list[int] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _stop: Any = field(default=None, repr=False)

    # -- server ------------------------------------------------------------------------
    def start(self) -> FakeMicroworkers:
        server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=_Quiet)
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.port}{PREFIX}"

        def stop() -> None:
            server.shutdown()
            thread.join(timeout=5)
            server.server_close()

        self._stop = stop
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.requests.append(
                Received(
                    request.method,
                    request.path,
                    {k.lower(): v for k, v in request.headers.items()},
                    body,
                    datetime.now(UTC).timestamp(),
                )
            )
            try:
                if self.fail_next:
                    status = self.fail_next.pop(0)
                    raise ApiError(status, "ServiceUnavailable", "try again later (injected)")
                if request.headers.get("MicroworkersApiKey") != self.api_key:
                    raise ApiError(401, "Unauthorized", "missing or wrong MicroworkersApiKey")
                status, payload = self._route(request)
            except ApiError as exc:
                status, payload = exc.status, {"code": exc.code, "message": exc.message}
        if payload is None:
            return Response(status=status)(environ, start_response)
        return Response(_dumps(payload), status=status, mimetype="application/json")(
            environ, start_response
        )

    def _route(self, request: Request) -> tuple[int, Any]:
        path = request.path.removeprefix(PREFIX).strip("/").split("/")
        method = request.method
        if path == ["basic-campaigns"] and method == "POST":
            return 201, self._create(_json(request))
        if path == ["basic-campaigns"] and method == "GET":
            items = list(self.campaigns.values())[::-1]  # newest first (-created)
            items = _created_filter(items, request.args)
            return 200, _page(items, request.args)
        if len(path) == 2 and path[0] == "basic-campaigns":
            campaign = self._campaign(path[1])
            if method == "GET":
                return 200, campaign
            if method == "PATCH":
                return 200, self._patch(campaign, _json(request))
        if len(path) == 3 and path[0] == "basic-campaigns" and path[2] == "slots":
            return 200, self._list_slots(path[1], request.args, method)
        if len(path) == 2 and path[0] == "slots" and method == "GET":
            return 200, _public(self._slot(path[1]))
        if len(path) == 3 and path[0] == "slots" and path[2] == "rate" and method == "PUT":
            self._rate(self._slot(path[1]), _json(request))
            return 204, None
        raise ApiError(404, "NotFound", f"no route {method} {request.path}")

    def _list_slots(self, campaign_id: str, args, method: str) -> dict[str, Any]:
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")
        campaign = self._campaign(campaign_id)
        items = [s for s in self.slots.values() if s["campaignId"] == campaign["id"]]
        if args.get("status"):
            items = [s for s in items if s["status"] == args["status"]]
        items.sort(key=lambda s: s["createdAt"])
        return _page([_public(s) for s in items], args)

    # -- campaigns ---------------------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("title", "description", "categoryId"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise ApiError(400, "ValidationFailed", f"{name} is required")
        positions = body.get("availablePositions")
        if not _is_int(positions) or positions < MIN_POSITIONS:
            raise ApiError(
                400, "ValidationFailed", f"availablePositions must be at least {MIN_POSITIONS}"
            )
        _int_in(body, "ttr", 1, 30, required=True)
        _int_in(body, "minutesToFinish", 1, 60 * 24 * 30, required=True)
        _int_in(body, "speed", 1, 1000, required=False)
        pay = body.get("paymentPerTask")
        if isinstance(pay, bool) or not isinstance(pay, int | float) or pay <= 0:
            raise ApiError(400, "ValidationFailed", "paymentPerTask must be a positive amount")
        templates = [t for t in _TEMPLATES if body.get(t) is not None]
        if len(templates) != 1:
            raise ApiError(
                400, "ValidationFailed", "give internalTemplate or externalTemplate (one)"
            )
        campaign_id = secrets.token_hex(6)
        campaign = {
            **{k: v for k, v in body.items() if k != "tasks"},
            "id": campaign_id,
            "status": "RUNNING",
            "created": _iso(datetime.now(UTC)),
        }
        self.campaigns[campaign_id] = campaign
        return campaign

    def _patch(self, campaign: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - _PATCHABLE
        if unknown:
            raise ApiError(400, "ValidationFailed", f"cannot change {', '.join(sorted(unknown))}")
        if "ttr" in body:
            _int_in(body, "ttr", 1, 30, required=True)
        if "speed" in body:
            _int_in(body, "speed", 1, 1000, required=True)
        campaign.update(body)
        return campaign

    def _campaign(self, campaign_id: str) -> dict[str, Any]:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            raise ApiError(404, "NotFound", f"no campaign {campaign_id}")
        return campaign

    # -- slots -------------------------------------------------------------------------
    def _slot(self, slot_id: str) -> dict[str, Any]:
        slot = self.slots.get(slot_id)
        if slot is None:
            raise ApiError(404, "NotFound", f"no slot {slot_id}")
        return slot

    def _rate(self, slot: dict[str, Any], body: dict[str, Any]) -> None:
        rating, comment, bonus = body.get("rating"), body.get("comment"), body.get("bonus")
        if rating not in ("OK", "NOK", "REVISE"):
            raise ApiError(400, "ValidationFailed", "rating must be OK, NOK or REVISE")
        if rating != "OK" and (not isinstance(comment, str) or not comment.strip()):
            raise ApiError(400, "ValidationFailed", f"comment is required for {rating}")
        if slot["status"] != "NOTRATED":
            raise ApiError(400, "SlotAlreadyRated", f"slot {slot['id']} is {slot['status']}")
        price = float(self.campaigns[slot["campaignId"]]["paymentPerTask"])
        if bonus is not None:
            if rating != "OK":
                raise ApiError(400, "ValidationFailed", "a bonus goes with an OK rating only")
            if isinstance(bonus, bool) or not isinstance(bonus, int | float):
                raise ApiError(400, "BonusAmountInvalidType", "bonus must be a decimal number")
            if round(bonus, 2) != bonus:
                raise ApiError(400, "BonusAmountInvalidType", "bonus: 2 decimal places at most")
            if bonus < round(price * 0.10, 2) - 1e-9:
                raise ApiError(400, "BonusAmountTooLow", "set bonus between 10% - 200%")
            if bonus > round(price * 2.0, 2) + 1e-9:
                raise ApiError(400, "BonusAmountTooHigh", "set bonus between 10% - 200%")
        slot["status"] = rating
        slot["employerComment"] = comment or ""
        slot["ratedBy"] = "employer"
        if rating == "OK":
            slot["workerEarned"] = price
            slot["bonusWorkerEarned"] = float(bonus or 0)

    # -- controls for tests ------------------------------------------------------------
    def take(self, campaign_id: str, count: int = 1, worker: str = "") -> list[str]:
        """Workers take `count` positions: new ALLOCATED slots."""
        with self._lock:
            campaign = self._campaign(campaign_id)
            taken = sum(1 for s in self.slots.values() if s["campaignId"] == campaign_id)
            if taken + count > campaign["availablePositions"]:
                raise ValueError("no positions left")
            ids = []
            for i in range(count):
                slot_id = secrets.token_hex(5)
                now = datetime.now(UTC)
                self.slots[slot_id] = {
                    "id": slot_id,
                    "campaignId": campaign_id,
                    "status": "ALLOCATED",
                    "workerId": worker or f"w{taken + i + 1:04d}",
                    "createdAt": _iso(now),
                    "allocatedTime": _iso(now),
                    "finishedTime": None,
                    "lockedUntilTime": _iso(now + timedelta(minutes=campaign["minutesToFinish"])),
                    "tasksAnswers": [],
                    "fileProofs": [],
                    "employerComment": "",
                    "workerEarned": 0.0,
                    "bonusWorkerEarned": 0.0,
                    "published": True,
                    "estimateCost": float(campaign["paymentPerTask"]),
                }
                ids.append(slot_id)
            return ids

    def submit(self, slot_id: str, answer: str, finished: datetime | None = None) -> None:
        """The worker submits (or resubmits after REVISE) proof: the slot is NOTRATED."""
        with self._lock:
            slot = self._slot(slot_id)
            if slot["status"] not in ("ALLOCATED", "REVISE"):
                raise ValueError(f"slot {slot_id} is {slot['status']}")
            finished = finished or datetime.now(UTC)
            if slot["finishedTime"] and _iso(finished) <= slot["finishedTime"]:
                finished = datetime.fromisoformat(slot["finishedTime"]) + timedelta(seconds=1)
            slot["status"] = "NOTRATED"
            slot["finishedTime"] = _iso(finished)
            slot["tasksAnswers"] = [
                {
                    "taskId": "t1",
                    "successRate": 0,
                    "questionsAnswers": [
                        {"questionId": "q1", "question": "Your work", "answer": answer, "rate": 0}
                    ],
                }
            ]

    def expire(self, slot_id: str) -> None:
        with self._lock:
            slot = self._slot(slot_id)
            if slot["status"] != "ALLOCATED":
                raise ValueError(f"slot {slot_id} is {slot['status']}")
            slot["status"] = "EXPIRED"

    def auto_approve(self, now: datetime | None = None) -> list[str]:
        """What the platform does after `ttr` days: unrated slots are rated OK (no bonus)."""
        now = now or datetime.now(UTC)
        approved = []
        with self._lock:
            for slot in self.slots.values():
                if slot["status"] != "NOTRATED":
                    continue
                campaign = self.campaigns[slot["campaignId"]]
                due = datetime.fromisoformat(slot["finishedTime"]) + timedelta(days=campaign["ttr"])
                if due <= now:
                    slot["status"] = "OK"
                    slot["ratedBy"] = "system"
                    slot["workerEarned"] = float(campaign["paymentPerTask"])
                    approved.append(slot["id"])
        return approved

    def set_status(self, slot_id: str, status: str) -> None:
        with self._lock:
            self._slot(slot_id)["status"] = status

    def calls(self, method: str, path_part: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]


@contextmanager
def running_fake(**kwargs: Any) -> Iterator[FakeMicroworkers]:
    fake = FakeMicroworkers(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


# -- helpers ----------------------------------------------------------------------------
def _dumps(payload: Any) -> str:
    import json

    return json.dumps(payload)


def _json(request: Request) -> dict[str, Any]:
    if "json" not in (request.content_type or ""):
        raise ApiError(400, "ValidationFailed", "send application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "ValidationFailed", "the body must be a JSON object")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_in(body: dict[str, Any], name: str, low: int, high: int, *, required: bool) -> None:
    value = body.get(name)
    if value is None and not required:
        return
    if not _is_int(value) or not low <= value <= high:
        raise ApiError(400, "ValidationFailed", f"{name} must be a whole number {low}..{high}")


def _created_filter(items: list[dict[str, Any]], args) -> list[dict[str, Any]]:
    """``filter[created][op]`` (gt, gte, lt, lte) with ``filter[created][value]``."""
    op, value = args.get("filter[created][op]"), args.get("filter[created][value]")
    if op is None and value is None:
        return items
    if op not in ("gt", "gte", "lt", "lte") or not value:
        raise ApiError(400, "ValidationFailed", "filter[created] needs an op and a value")
    try:
        when = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        raise ApiError(400, "ValidationFailed", "filter[created][value] format") from None
    tests = {
        "gt": lambda c: c > when,
        "gte": lambda c: c >= when,
        "lt": lambda c: c < when,
        "lte": lambda c: c <= when,
    }
    return [i for i in items if tests[op](datetime.fromisoformat(i["created"]))]


def _public(slot: dict[str, Any]) -> dict[str, Any]:
    """A slot as the API shows it (the fake's own bookkeeping left out)."""
    return {k: v for k, v in slot.items() if k not in ("campaignId", "ratedBy")}


def _page(items: list[dict[str, Any]], args) -> dict[str, Any]:
    """`pageSize` (default 10) and an opaque `nextPageToken` (absent on the last page)."""
    try:
        size = int(args.get("pageSize", DEFAULT_PAGE_SIZE))
    except ValueError:
        raise ApiError(400, "ValidationFailed", "pageSize must be a whole number") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ApiError(400, "ValidationFailed", f"pageSize must be 1..{MAX_PAGE_SIZE}")
    token = args.get("nextPageToken")
    start = 0
    if token:
        try:
            start = int(token.removeprefix("p"), 16)
        except ValueError:
            raise ApiError(400, "ValidationFailed", "nextPageToken is not valid") from None
    chunk = items[start : start + size]
    result: dict[str, Any] = {"items": chunk, "perPage": size}
    if start + size < len(items):
        result["nextPageToken"] = f"p{start + size:x}"
    return result
