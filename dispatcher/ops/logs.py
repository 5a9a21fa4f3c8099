"""Log lines that can be followed across processes: a request id on every line a request
writes, and the RQ job, dispatch, job and connection ids on every line a task writes.

LOG_FORMAT=json writes one JSON object per line (for a log shipper); the default stays the
plain text a person reads. The ids travel in a context variable, so any module's logger
carries them without being handed them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, g, request

_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "dispatcher_log_context", default=None
)
#: an incoming X-Request-Id is kept only if it looks like an id (no log injection)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID_HEADER = "X-Request-Id"


def bind(**ids: Any) -> None:
    """Add ids to every log line this context writes from now on."""
    _CONTEXT.set({**(_CONTEXT.get() or {}), **{k: v for k, v in ids.items() if v is not None}})


def unbind(*names: str) -> None:
    context = dict(_CONTEXT.get() or {})
    for name in names:
        context.pop(name, None)
    _CONTEXT.set(context)


def clear() -> None:
    _CONTEXT.set({})


def context() -> dict[str, Any]:
    return dict(_CONTEXT.get() or {})


class ContextFilter(logging.Filter):
    """Copy the bound ids onto each record (`record.context`), for either format."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context = context()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound ids, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        line.update(getattr(record, "context", None) or context())
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    """The usual text line, with the bound ids appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = getattr(record, "context", None) or {}
        return text + "".join(f" {k}={v}" for k, v in ids.items()) if ids else text


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Give the root logger one handler in the chosen format (idempotent per process)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dispatcher", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._dispatcher = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    if log_format == "json":  # RQ's and gunicorn's own loggers: through the same handler
        for name in ("rq.worker", "rq", "gunicorn.error"):
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True


def request_id() -> str:
    """The id of the request being served (from X-Request-Id, or made up)."""
    return getattr(g, "request_id", "")


def start_request(given: str) -> str:
    """A request's id (the caller's X-Request-Id if it is a sane one, or a new one), kept in
    `g` and bound to every log line until the request ends."""
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    clear()
    bind(request_id=g.request_id)
    return g.request_id


def init_app(app: Flask) -> None:
    """Request ids in and out; the log format when the settings ask for JSON."""
    settings = app.config["SETTINGS"]
    if settings.log_format == "json" and not app.extensions.get("dispatcher.logs"):
        configure("json")
        app.extensions["dispatcher.logs"] = True

    @app.before_request
    def _take_request_id() -> None:
        start_request(request.headers.get(REQUEST_ID_HEADER, ""))

    @app.after_request
    def _echo_request_id(response):
        if getattr(g, "request_id", None):
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.teardown_request
    def _forget_request_id(exc: BaseException | None) -> None:
        clear()


def bind_rq_job(job) -> None:
    """At the start of an RQ job: its id, its function, and the row ids it was given."""
    import inspect

    clear()
    bind(rq_job=job.id, task=job.func_name.rsplit(".", 1)[-1])
    try:
        bound = inspect.signature(job.func).bind_partial(*job.args, **job.kwargs)
    except (TypeError, ValueError):
        return
    bind(**{k: v for k, v in bound.arguments.items() if k.endswith("_id")})
