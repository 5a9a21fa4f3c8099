"""Helpers shared by the dispatch and inbound tests: people, goals, jobs, signed webhooks,
and a scripted HTTP server on loopback."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fakes.sandbox_fixture import SECRET
from sqlalchemy import event, select
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from adapters import standard_webhooks
from dispatcher import connections
from dispatcher.extensions import db
from dispatcher.models import Connection, Owner
from dispatcher.planning import tree


def make_owner(email: str = "ann@example.com") -> Owner:
    owner = Owner(email=email, name=email.split("@")[0].title())
    owner.set_password("correct horse")
    db.session.add(owner)
    db.session.commit()
    return owner


def hook_url(owner_id: int | None = None) -> str:
    """The webhook path of the (owner's) first sandbox connection."""
    query = select(Connection).where(Connection.adapter == "sandbox").order_by(Connection.id)
    if owner_id is not None:
        query = query.where(Connection.owner_id == owner_id)
    return connections.webhook_path(db.session.scalars(query).first())


def delegated(goal, title: str = "job", price: int = 1000, **fields):
    fields.setdefault("channel", "sandbox")
    return tree.add_job(goal, title=title, price_cents=price, mode="delegate", **fields)


def staged(job):
    """Dispatch `job` the way `dispatch_goal` stages each of many: committed with no first
    lease, its send task queued, so the task claims it (send_batch.py) instead of taking a
    request's token (first_attempt.py). For tests of the claim and the batch."""
    from dispatcher.dispatch import service

    dispatch = service.dispatch_job(job, commit=False)
    db.session.commit()
    service.enqueue_send(dispatch)
    return dispatch


def dispatch_at_once(app, job_ids: list[int]) -> dict[int, str]:
    """Dispatch each job from its own thread and session, all let go at one instant (one
    owner's request each); each job's outcome: "queued", "refused" (over budget), or the
    unexpected error, for the caller's assertion to show."""
    from dispatcher.dispatch import service
    from dispatcher.errors import BudgetExceeded
    from dispatcher.models import MicroJob

    barrier = threading.Barrier(len(job_ids))
    outcomes: dict[int, str] = {}

    def request(job_id: int) -> None:
        with app.app_context():
            try:
                job = db.session.get(MicroJob, job_id)
                barrier.wait(timeout=30)
                service.dispatch_job(job)
                outcomes[job_id] = "queued"
            except BudgetExceeded:
                db.session.rollback()
                outcomes[job_id] = "refused"
            except Exception as exc:  # reported by the caller's assertion
                db.session.rollback()
                outcomes[job_id] = f"{type(exc).__name__}: {exc}"
            finally:
                db.session.remove()

    threads = [threading.Thread(target=request, args=(i,)) for i in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def race(child, app, app_config, tmp_path, specs: list[dict], start_in: float = 6) -> list[dict]:
    """Run the script `child` once per spec, each in its own process of the same deployment
    (database, Redis, encryption key; its own instance folder), all starting at one instant
    `start_in` seconds from now (every child has imported and connected by then); the JSON
    each printed last."""
    start_at = time.time() + start_in
    common = {
        "database_url": app_config["database_url"],
        "redis_url": app_config["redis_url"],
        # every process of one deployment shares the key credentials need
        "encryption_key": app.config["SETTINGS"].encryption_key,
        "start_at": start_at,
    }
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(child),
                json.dumps({**common, "instance": str(tmp_path / f"child{n}"), **spec}),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for n, spec in enumerate(specs)
    ]
    results = []
    for process in children:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def signed_webhook(
    type_: str,
    order_id: str,
    *,
    event_id: str | None = None,
    submission_id: str | None = None,
    msg_id: str | None = None,
    timestamp: int | None = None,
    secret: str = SECRET,
    body: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """A sandbox-shaped webhook, signed the Standard Webhooks way."""
    if body is None:
        payload = {
            "id": event_id or f"evt_{secrets.token_hex(6)}",
            "type": type_,
            "created_at": datetime.now(UTC).isoformat(),
            "data": {
                "order_id": order_id,
                "client_ref": "job-1",
                "submission_id": submission_id,
                "worker_id": "w_1",
                "content": "the work" if submission_id else None,
                "url": None,
                "status": "delivered",
            },
        }
        body = json.dumps(payload).encode()
    headers = standard_webhooks.sign(
        secret, msg_id or f"msg_{secrets.token_hex(6)}", timestamp, body
    )
    headers["content-type"] = "application/json"
    return headers, body


@dataclass
class Scripted:
    """A loopback server that answers from a script: each item is (status, headers, delay)."""

    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    default: tuple[int, dict[str, str], float] = (200, {}, 0.0)
    hits: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ, start_response):
        Request(environ).get_data()
        with self._lock:
            self.hits += 1
            status, headers, delay = self.script.pop(0) if self.script else self.default
        if delay:
            time.sleep(delay)
        body = json.dumps({"id": "ord_1", "status": status})
        return Response(body, status=status, headers=headers, mimetype="application/json")(
            environ, start_response
        )

    def start(self) -> Scripted:
        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self._server.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def statements() -> Iterator[dict[str, list]]:
    """The SQL sent meanwhile (upper-cased, one line each), and how many statements had been
    sent at each commit."""
    seen: dict[str, list] = {"sql": [], "commits": []}

    def on_statement(conn, cursor, statement, *args) -> None:
        seen["sql"].append(" ".join(statement.split()).upper())

    def on_commit(conn) -> None:
        seen["commits"].append(len(seen["sql"]))

    event.listen(db.engine, "before_cursor_execute", on_statement)
    event.listen(db.engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", on_statement)
        event.remove(db.engine, "commit", on_commit)


def note_early_tasks(monkeypatch) -> list[int]:
    """The dispatch ids whose send task a request queues before its commit
    (first_attempt.queue_early), in order, as the test goes on."""
    from dispatcher.dispatch import first_attempt

    queued: list[int] = []
    queue_early = first_attempt.queue_early

    def noting(order_id: int):
        queued.append(order_id)
        return queue_early(order_id)

    monkeypatch.setattr(first_attempt, "queue_early", noting)
    return queued
