"""A local fake of Asana's REST API and webhooks, built from Asana's documentation, a real
HTTP server on loopback.

As Asana does: ``Authorization: Bearer <token>`` on every call (401 otherwise); bodies in and
out wrapped in ``{"data": ...}``; errors as ``{"errors": [{"message", "help"}]}``; tasks
need ``projects`` or ``workspace``, an ``assignee`` given as gid, email or ``me``, ``due_on``
as YYYY-MM-DD; task lists paged with ``limit`` (1-100) and ``next_page.offset``. Creating a
webhook POSTs to its target with ``X-Hook-Secret`` before the creation answers, and fails
unless the target answers 200/204 echoing the header. Events are then POSTed in batches
``{"events": [...]}``, compact as Asana's are (gids, no field values, no comment text),
with ``X-Hook-Signature`` = hex HMAC-SHA256(secret, body); `heartbeat` sends an empty batch.
Unlike Asana, it accepts loopback targets (Asana refuses localhost with 403).

Changes made through the API (a task created, a comment posted) are sent from a background
thread, after the answer; the test controls `complete`, `move_to_section` and `comment` (the
person's own actions in Asana) send theirs before returning, with the answers in `deliveries`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from fakes.loopback import serve
from fakes.receiver import Received

PREFIX = "/api/1.0"
TOKEN = "asana-pat-0001"
WORKSPACE = "1200000000000001"
PROJECT = "1200000000000100"
SECTION_TODO = "1200000000000201"
SECTION_DONE = "1200000000000202"
ME = {"gid": "1200000000000011", "name": "Dispatcher", "email": "owner@example.com"}
BOB = {"gid": "1200000000000012", "name": "Bob Baker", "email": "bob@example.com"}
HELP = "For more information on API status codes and how to handle them, read the docs on errors"


class AsanaError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Delivery:
    url: str
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class FakeAsana:
    url: str = ""  # the API base, ending in /api/1.0
    requests: list[Received] = field(default_factory=list)
    users: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {u["gid"]: u for u in (ME, BOB)}
    )
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    stories: list[dict[str, Any]] = field(default_factory=list)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    #: the X-Hook-Secret of each handshake sent, in order
    handshakes: list[str] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _stop: Any = field(default=None, repr=False)
    _senders: list[threading.Thread] = field(default_factory=list, repr=False)
    _next_gid: int = 1300000000000000

    # -- server ------------------------------------------------------------------------
    def start(self) -> FakeAsana:
        root, self._stop = serve(self)
        self.url = root + PREFIX
        return self

    def stop(self) -> None:
        self.settle()
        if self._stop is not None:
            self._stop()
            self._stop = None

    def settle(self, timeout: float = 10) -> None:
        """Wait until the events sent in the background have been answered."""
        for thread in list(self._senders):
            thread.join(timeout)

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            Received(request.method, request.path, headers, body, datetime.now(UTC).timestamp())
        )
        try:
            if headers.get("authorization") != f"Bearer {TOKEN}":
                raise AsanaError(401, "Not Authorized")
            status, payload = self._route(request)
        except AsanaError as exc:
            status, payload = exc.status, {"errors": [{"message": exc.message, "help": HELP}]}
        return Response(json.dumps(payload), status=status, mimetype="application/json")(
            environ, start_response
        )

    def _route(self, request: Request) -> tuple[int, Any]:
        path = request.path.removeprefix(PREFIX).strip("/").split("/")
        method, args = request.method, request.args
        if path == ["webhooks"] and method == "POST":
            return 201, {"data": self._create_webhook(_data(request))}  # handshake: no lock
        with self._lock:
            if path == ["users", "me"] and method == "GET":
                return 200, {"data": ME}
            if path[:1] == ["projects"] and len(path) == 2 and method == "GET":
                if path[1] != PROJECT:
                    raise AsanaError(404, f"project: Unknown object: {path[1]}")
                return 200, {"data": _project()}
            if path == ["webhooks"] and method == "GET":
                return 200, {"data": self._list_webhooks(args)}
            if path == ["tasks"] and method == "POST":
                return 201, {"data": self._create_task(_data(request))}
            if path == ["tasks"] and method == "GET":
                return 200, self._list_tasks(args)
            if path[:1] == ["tasks"] and len(path) == 2 and method == "GET":
                return 200, {"data": self._task(path[1])}
            if path[:1] == ["tasks"] and path[2:] == ["stories"] and method == "GET":
                self._task(path[1])
                return 200, {"data": [s for s in self.stories if s["target"] == path[1]]}
            if path[:1] == ["tasks"] and path[2:] == ["stories"] and method == "POST":
                story, event = self._comment(path[1], _data(request).get("text"), ME)
                self._fire([event], background=True)
                return 201, {"data": story}
        raise AsanaError(404, f"No matching route for request: {method} {request.path}")

    # -- tasks --------------------------------------------------------------------------
    def _gid(self) -> str:
        self._next_gid += 1
        return str(self._next_gid)

    def _user(self, ref: Any) -> dict[str, Any]:
        if ref == "me":
            return ME
        for user in self.users.values():
            if ref in (user["gid"], user["email"]):
                return user
        raise AsanaError(400, "assignee: Not a recognized ID or email: " + str(ref))

    def _create_task(self, data: dict[str, Any]) -> dict[str, Any]:
        projects = data.get("projects")
        if projects is None and data.get("workspace") is None:
            raise AsanaError(400, "You should specify one of workspace, parent, projects")
        if projects is not None and (
            not isinstance(projects, list) or any(p != PROJECT for p in projects)
        ):
            raise AsanaError(404, f"projects: Unknown object: {projects}")
        for name in ("name", "notes"):
            if not isinstance(data.get(name, ""), str):
                raise AsanaError(400, f"{name}: Value is not a string")
        assignee = self._user(data["assignee"]) if data.get("assignee") else None
        due = data.get("due_on")
        if due is not None:
            try:
                date.fromisoformat(str(due))
            except ValueError as exc:
                raise AsanaError(400, f"due_on: Invalid date: {due}") from exc
        gid = self._gid()
        task = {
            "gid": gid,
            "resource_type": "task",
            "resource_subtype": "default_task",
            "name": data.get("name", ""),
            "notes": data.get("notes", ""),
            "assignee": {"gid": assignee["gid"], "resource_type": "user"} if assignee else None,
            "due_on": due,
            "completed": False,
            "projects": [{"gid": PROJECT, "resource_type": "project"}],
            "memberships": [{"project": {"gid": PROJECT}, "section": {"gid": SECTION_TODO}}],
            "permalink_url": f"https://app.asana.com/0/{PROJECT}/{gid}",
        }
        self.tasks[gid] = task
        event = _event(ME, "added", _ref(task), {"gid": PROJECT, "resource_type": "project"})
        self._fire([event], background=True)
        return task

    def _task(self, gid: str) -> dict[str, Any]:
        task = self.tasks.get(gid)
        if task is None:
            raise AsanaError(404, f"task: Unknown object: {gid}")
        return task

    def _list_tasks(self, args) -> dict[str, Any]:
        if args.get("project") != PROJECT:
            raise AsanaError(
                400,
                "project: Must specify exactly one of project, tag, section, user task list, "
                "or assignee + workspace",
            )
        try:
            limit = int(args.get("limit", "50"))
        except ValueError as exc:
            raise AsanaError(400, "limit: Not an integer") from exc
        if not 1 <= limit <= 100:
            raise AsanaError(400, "limit: Must be between 1 and 100")
        start = 0
        if args.get("offset"):
            try:
                start = int(base64.urlsafe_b64decode(args["offset"]).decode().removeprefix("o:"))
            except ValueError as exc:
                raise AsanaError(400, "offset: Your pagination token is invalid.") from exc
        tasks = list(self.tasks.values())
        page = tasks[start : start + limit]
        fields = [f for f in args.get("opt_fields", "").split(",") if f]
        items = [{"gid": t["gid"], **{f: t.get(f) for f in fields}} for t in page]
        more = start + limit < len(tasks)
        offset = base64.urlsafe_b64encode(f"o:{start + limit}".encode()).decode()
        return {
            "data": items,
            "next_page": {"offset": offset, "path": f"/tasks?offset={offset}"} if more else None,
        }

    def _comment(
        self, gid: str, text: Any, user: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A comment story on the task, and the event Asana reports it with."""
        task = self._task(gid)
        if not isinstance(text, str) or not text.strip():
            raise AsanaError(400, "text: Missing input")
        story = {
            "gid": self._gid(),
            "resource_type": "story",
            "resource_subtype": "comment_added",
            "type": "comment",
            "text": text,
            "created_by": {"gid": user["gid"], "resource_type": "user"},
            "created_at": _now(),
            "target": gid,
        }
        self.stories.append(story)
        ref = {"gid": story["gid"], "resource_type": "story", "resource_subtype": "comment_added"}
        return story, _event(user, "added", ref, _ref(task))

    # -- webhooks -----------------------------------------------------------------------
    def _list_webhooks(self, args) -> list[dict[str, Any]]:
        if args.get("workspace") != WORKSPACE:
            raise AsanaError(400, "workspace: Missing input")
        hooks = [
            w
            for w in self.webhooks.values()
            if args.get("resource") in (None, w["resource"]["gid"])
        ]
        return [_public(w) for w in hooks]

    def _create_webhook(self, data: dict[str, Any]) -> dict[str, Any]:
        resource, target = data.get("resource"), data.get("target")
        if not isinstance(target, str) or not target.startswith(("http://", "https://")):
            raise AsanaError(400, "target: Missing input")
        if resource not in (PROJECT, *self.tasks):
            raise AsanaError(404, f"resource: Unknown object: {resource}")
        secret = secrets.token_hex(32)
        self.handshakes.append(secret)
        try:
            answer = requests.post(target, data=b"", headers={"X-Hook-Secret": secret}, timeout=10)
        except requests.RequestException as exc:
            raise AsanaError(
                400, f"Could not complete activation handshake with target URL: {exc}"
            ) from exc
        if answer.status_code not in (200, 204) or answer.headers.get("X-Hook-Secret") != secret:
            raise AsanaError(
                400,
                "Could not complete activation handshake with target URL. Please ensure that the "
                f"receiving server is accepting connections (answered {answer.status_code})",
            )
        kind = "project" if resource == PROJECT else "task"
        hook = {
            "gid": self._gid(),
            "resource_type": "webhook",
            "resource": {"gid": resource, "resource_type": kind},
            "target": target,
            "active": True,
            "filters": data.get("filters") or [],
            "created_at": _now(),
            "secret": secret,
        }
        with self._lock:
            self.webhooks[hook["gid"]] = hook
        return _public(hook)

    def _fire(self, events: list[dict[str, Any]], *, background: bool) -> list[int]:
        if background:
            thread = threading.Thread(target=self.send, args=(events,), daemon=True)
            self._senders.append(thread)
            thread.start()
            return []
        return self.send(events)

    def send(self, events: list[dict[str, Any]], secret: str | None = None) -> list[int]:
        """POST one batch to every active webhook, signed with its secret (or `secret`)."""
        statuses = []
        for hook in [w for w in self.webhooks.values() if w["active"]]:
            body = json.dumps({"events": events}).encode()
            key = secret if secret is not None else hook["secret"]
            headers = {"Content-Type": "application/json", "X-Hook-Signature": sign(body, key)}
            try:
                status = requests.post(
                    hook["target"], data=body, headers=headers, timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            self.deliveries.append(Delivery(hook["target"], body, headers, status))
            statuses.append(status)
        return statuses

    # -- the person's own actions (Asana's UI), for tests ----------------------------------
    def complete(self, gid: str, user: dict[str, Any] = BOB) -> list[int]:
        with self._lock:
            task = self._task(gid)
            task["completed"] = True
        change = {"field": "completed", "action": "changed"}
        return self.send([_event(user, "changed", _ref(task), None, change)])

    def move_to_section(self, gid: str, section: str, user: dict[str, Any] = BOB) -> list[int]:
        with self._lock:
            task = self._task(gid)
            task["memberships"] = [{"project": {"gid": PROJECT}, "section": {"gid": section}}]
        parent = {"gid": section, "resource_type": "section"}
        return self.send([_event(user, "added", _ref(task), parent)])

    def comment(self, gid: str, text: str, user: dict[str, Any] = BOB) -> list[int]:
        """The person's comment; returns the statuses the webhooks answered."""
        with self._lock:
            _, event = self._comment(gid, text, user)
        return self.send([event])

    def heartbeat(self) -> list[int]:
        return self.send([])

    def comments(self, gid: str) -> list[str]:
        return [s["text"] for s in self.stories if s["target"] == gid]


def sign(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _ref(task: dict[str, Any]) -> dict[str, Any]:
    return {"gid": task["gid"], "resource_type": "task", "resource_subtype": "default_task"}


def _event(
    user: dict[str, Any],
    action: str,
    resource: dict[str, Any],
    parent: dict[str, Any] | None,
    change: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event = {
        "user": {"gid": user["gid"], "resource_type": "user"},
        "created_at": _now(),
        "action": action,
        "resource": resource,
        "parent": parent,
    }
    if change is not None:
        event["change"] = change
    return event


def _project() -> dict[str, Any]:
    return {
        "gid": PROJECT,
        "resource_type": "project",
        "name": "Work",
        "workspace": {"gid": WORKSPACE, "resource_type": "workspace"},
    }


def _public(hook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hook.items() if k not in ("secret", "filters")}


def _data(request: Request) -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise AsanaError(400, "data: Missing input")
    return body["data"]
