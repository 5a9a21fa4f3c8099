"""Asana as a teammate channel: a job becomes a task in the owner's project, assigned to the
person, and comes back when they complete it (or move it to the done section).

API: https://developers.asana.com/reference/ (base ASANA_API_BASE), ``Authorization: Bearer``
with a personal access token; bodies wrapped in ``{"data": ...}``. Webhooks:
https://developers.asana.com/docs/webhooks-guide - while ``POST /webhooks`` is in flight
Asana POSTs to the target with ``X-Hook-Secret``: `handshake` echoes it and hands it to the
route, which stores it (sealed, with the connection's credentials) only while the connection
expects one (dispatcher/handshakes.py). Deliveries then carry ``X-Hook-Signature`` = hex
HMAC-SHA256(secret, raw body). Asana signs no timestamp and retries for up to a day, so no
freshness window applies; a replay is the same body, hence the same event id (below), and
is stored once.

Events carry no ids: a delivery's id is ``asana-`` + the SHA-256 of its raw body (stable
across Asana's retries of that body), and each event in it is that id plus its position.
Webhook events are compact (ids only: no completed value, no comment text), so the mapping
reads what they do carry (STATUS_MAP, keyed ``<resource_type>.<action>``):
- a task's ``completed`` field changed -> DELIVERED ("marked complete"; un-completing it
  cannot be told apart without a fetch, and a second delivery on a place already handed in
  is kept as late work, charged to nobody);
- a task added to the connection's done section -> DELIVERED;
- a comment story added -> MESSAGE (its text is not in the event: read it on the task);
- an empty ``events`` list is Asana's heartbeat -> IGNORED (answered 2xx, stored ignored);
- the other listed words -> IGNORED; anything else -> UNKNOWN.
Not idempotent with a personal token (``external`` needs an OAuth app): the task's notes end
with the key's reference line and `find` reads the project's tasks for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from adapters import boards
from adapters.base import (
    Capability,
    EventKind,
    HandshakeReply,
    JobSpec,
    NormalizedEvent,
    Notice,
    Receipt,
)
from adapters.teammate import TeammateAdapter
from dispatcher.errors import AdapterError, PayloadError, SignatureError

SECRET_HEADER = "x-hook-secret"
SIGNATURE_HEADER = "x-hook-signature"
#: where a handshake's secret is kept in the connection's credentials (dispatcher/handshakes)
HOOK_SECRET = "hook_secret"  # the same key as dispatcher.handshakes.HOOK_SECRET
#: the project's tasks are read this many at a time when looking for a key
PAGE_SIZE = 100

#: ``<resource_type>.<action>`` in our words; task.changed and task.added are decided in
#: `_event` (completed, done section). Anything not listed is UNKNOWN.
STATUS_MAP: dict[str, EventKind] = {
    "task.changed": EventKind.IGNORED,
    "task.added": EventKind.IGNORED,
    "task.removed": EventKind.IGNORED,
    "task.deleted": EventKind.IGNORED,
    "task.undeleted": EventKind.IGNORED,
    "story.added": EventKind.IGNORED,  # MESSAGE for a comment
    "story.changed": EventKind.IGNORED,
    "story.removed": EventKind.IGNORED,
    "story.deleted": EventKind.IGNORED,
    "section.added": EventKind.IGNORED,
    "section.changed": EventKind.IGNORED,
    "project.changed": EventKind.IGNORED,
}


class AsanaAdapter(TeammateAdapter):
    name = "asana"
    title = "Asana project"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.FIND, Capability.REVISION})
    calls_back_on_register = True
    reports_foreign_orders = True  # every task in the project, not only ours
    notice = (
        "Each job becomes a task in your project, assigned to the person (their Asana email "
        "or handle). Completing it, or moving it to the done section you name, hands the work "
        "in. Make a personal access token in Asana's developer console."
    )
    credential_fields = ("token",)
    option_fields = ("project_gid", "done_section_gid")
    _me: str | None = None  # the token's own user gid, once asked

    # -- account ------------------------------------------------------------------------
    def check(self) -> str:
        user = self._data(self.request("GET", self._url("users", "me")))
        return f"Asana user {user.get('name', '?')} ({user.get('email', '?')})"

    def register_webhook(self, url: str, secret: str) -> None:
        """Watch the project; Asana hands its own secret over in the handshake (`secret`,
        the connection's, is not used). A webhook already aimed at `url` is kept."""
        project = self._option("project_gid")
        workspace = self._data(
            self.request("GET", self._url("projects", project), params={"opt_fields": "workspace"})
        ).get("workspace")
        if isinstance(workspace, dict) and workspace.get("gid"):
            existing = self.json_object(
                self.request(
                    "GET",
                    self._url("webhooks"),
                    params={"workspace": workspace["gid"], "resource": project},
                )
            ).get("data")
            if isinstance(existing, list) and any(
                isinstance(w, dict) and w.get("target") == url and w.get("active") for w in existing
            ):
                return
        filters = [
            {"resource_type": "task", "action": "changed", "fields": ["completed"]},
            {"resource_type": "task", "action": "added"},
            {"resource_type": "story", "action": "added"},
        ]
        self.request(
            "POST",
            self._url("webhooks"),
            json={"data": {"resource": project, "target": url, "filters": filters}},
        )

    # -- outbound -----------------------------------------------------------------------
    def dispatch(self, job: JobSpec, idempotency_key: str) -> Receipt:
        found = self.find(idempotency_key)
        if found is not None:
            return found
        data: dict[str, Any] = {
            "name": job.title,
            "notes": boards.describe(job, idempotency_key),
            "projects": [self._option("project_gid")],
        }
        if job.person is not None:
            assignee = job.person.asana_handle.strip() or job.person.email.strip()
            if assignee:
                data["assignee"] = assignee
        if job.due_date is not None:
            data["due_on"] = job.due_date.isoformat()
        response = self.request("POST", self._url("tasks"), json={"data": data})
        return self._receipt(self._data(response))

    def find(self, idempotency_key: str) -> Receipt | None:
        params: dict[str, Any] = {
            "project": self._option("project_gid"),
            "opt_fields": "name,notes,permalink_url",
            "limit": PAGE_SIZE,
        }
        for _ in range(1000):  # a bound, not a limit a project reaches
            answer = self.json_object(self.request("GET", self._url("tasks"), params=params))
            tasks = answer.get("data")
            if not isinstance(tasks, list):
                raise AdapterError(self.name, "tasks answer has no data list")
            for task in tasks:
                notes = task.get("notes", "") if isinstance(task, dict) else ""
                if boards.has_ref(notes, idempotency_key):
                    return self._receipt(task)
            page = answer.get("next_page")
            if not isinstance(page, dict) or not page.get("offset"):
                return None
            params["offset"] = page["offset"]
        raise AdapterError(self.name, "the project's task list never ended")

    def notify(self, notice: Notice) -> None:
        """A comment on the task; one already there with the notice's key is not repeated."""
        if not notice.external_id:
            raise AdapterError(self.name, "an Asana notice needs the task it is about")
        stories = self.json_object(
            self.request(
                "GET",
                self._url("tasks", notice.external_id, "stories"),
                params={"opt_fields": "text,type"},
            )
        ).get("data")
        if isinstance(stories, list) and any(
            isinstance(s, dict) and boards.has_ref(s.get("text") or "", notice.key) for s in stories
        ):
            return
        self.request(
            "POST",
            self._url("tasks", notice.external_id, "stories"),
            json={"data": {"text": boards.comment_text(notice)}},
        )

    # -- inbound ------------------------------------------------------------------------
    def handshake(self, headers: Mapping[str, str], body: bytes) -> HandshakeReply | None:
        secret = _header(headers, SECRET_HEADER).strip()
        if not secret:
            return None
        return HandshakeReply(headers={"X-Hook-Secret": secret}, secret=secret)

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        secret = self.credentials.get(HOOK_SECRET, "")
        if not secret:
            raise SignatureError("no Asana handshake yet: register the webhook (Test connection)")
        given = _header(headers, SIGNATURE_HEADER).strip().lower()
        if not given:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            raise SignatureError("Asana signature does not match")

    def callback_event_id(self, headers: Mapping[str, str], body: bytes) -> str:
        return "asana-" + hashlib.sha256(body).hexdigest()[:40]

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> list[NormalizedEvent]:
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PayloadError(f"Asana webhook body is not JSON: {exc}") from exc
        events = payload.get("events") if isinstance(payload, dict) else None
        if not isinstance(events, list):
            raise PayloadError("Asana webhook body has no events list")
        base = self.event_id(headers, body)
        if not events:
            return [
                NormalizedEvent(
                    kind=EventKind.IGNORED,
                    event_id=base,
                    external_id="",
                    occurred_at=datetime.now(UTC),
                    raw=payload,
                    platform_status="heartbeat",
                )
            ]
        return [self._event(e, f"{base}-{i}") for i, e in enumerate(events)]

    # -- helpers --------------------------------------------------------------------------
    def _event(self, event: Any, event_id: str) -> NormalizedEvent:
        if not isinstance(event, dict):
            raise PayloadError("Asana event is not a JSON object")
        resource, parent = event.get("resource"), event.get("parent")
        resource = resource if isinstance(resource, dict) else {}
        parent = parent if isinstance(parent, dict) else {}
        rtype, action = _text(resource.get("resource_type")), _text(event.get("action"))
        if not rtype or not action:
            raise PayloadError("Asana event has no resource type or action")
        word = f"{rtype}.{action}"
        kind = STATUS_MAP.get(word, EventKind.UNKNOWN)
        external_id, content = "", ""
        if rtype == "task":
            external_id = _text(resource.get("gid"))
            change = event.get("change")
            field = _text(change.get("field")) if isinstance(change, dict) else ""
            done_section = str(self.options.get("done_section_gid") or "")
            if action == "changed" and field == "completed":
                kind, content = EventKind.DELIVERED, "Marked the task complete in Asana"
            elif (
                action == "added"
                and done_section
                and parent.get("resource_type") == "section"
                and parent.get("gid") == done_section
            ):
                kind, content = EventKind.DELIVERED, "Moved the task to the done section"
        elif word == "story.added" and parent.get("resource_type") == "task":
            external_id = _text(parent.get("gid"))
            if resource.get("resource_subtype") == "comment_added":
                kind = EventKind.MESSAGE
                if _gid(event.get("user")) and _gid(event.get("user")) == self._own_gid():
                    kind = EventKind.IGNORED  # our own notice, echoed back: not a question
                content = "New comment on the task in Asana (story {})".format(
                    _text(resource.get("gid"))
                )
        if kind in (EventKind.DELIVERED, EventKind.MESSAGE) and not external_id:
            raise PayloadError(f"Asana {word} event names no task")
        user = event.get("user")
        return NormalizedEvent(
            kind=kind,
            event_id=event_id,
            external_id=external_id,
            occurred_at=_when(event.get("created_at")),
            raw=event,
            content=content,
            worker=_text(user.get("gid")) if isinstance(user, dict) else "",
            platform_status=word,
        )

    def _own_gid(self) -> str:
        """The Asana user the token acts as (our notices are comments by them), asked once per
        adapter; "" when Asana cannot say now (a comment is then taken as the person's)."""
        if self._me is None:
            try:
                self._me = _gid(self._data(self.request("GET", self._url("users", "me"))))
            except (AdapterError, PayloadError):
                return ""
        return self._me

    def _url(self, *parts: str) -> str:
        base = str(self.settings.asana_api_base).rstrip("/")
        return base + "/" + "/".join(quote(p, safe="") for p in parts)

    def _option(self, name: str) -> str:
        value = str(self.options.get(name) or "").strip()
        if not value:
            raise AdapterError(self.name, f"the connection has no {name}: set it in Settings")
        return value

    def request(self, method: str, url: str, **kwargs: Any):
        """Every call carries the personal access token (never logged)."""
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"Bearer {self.credentials.get('token', '')}"
        return super().request(method, url, headers=headers, **kwargs)

    def _data(self, response) -> dict[str, Any]:
        data = self.json_object(response).get("data")
        if not isinstance(data, dict):
            raise AdapterError(self.name, "answer has no data object", body=response.text[:300])
        return data

    def _receipt(self, task: dict[str, Any]) -> Receipt:
        if not isinstance(task.get("gid"), str):
            raise AdapterError(self.name, "task answer has no gid", body=str(task)[:300])
        return Receipt(external_id=task["gid"], url=task.get("permalink_url") or "", raw=task)


def _when(value: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise PayloadError(f"Asana event created_at {value!r} is not ISO-8601") from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _gid(value: Any) -> str:
    return _text(value.get("gid")) if isinstance(value, dict) else ""
