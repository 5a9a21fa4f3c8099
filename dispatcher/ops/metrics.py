"""Prometheus metrics, every name starting with `dispatcher_`.

Counters and the latency histogram are written by whichever process does the work (gunicorn
workers, RQ workers) into the host's PROMETHEUS_MULTIPROC_DIR (set by the `dispatcher`
command, see `dispatcher.ops.prepare_process`) and summed at scrape time. Queue depths, the
oldest job's age and breaker states are read from Redis at scrape time instead: they are
facts about the shared Redis, the same from every host.

Instrumentation is one decorator per instrumented function, so the code it measures stays
as it is.
"""

from __future__ import annotations

import functools
import glob
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

#: decided when prometheus-client is first imported, as prometheus-client itself decides
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

DISPATCHED = Counter(
    "dispatcher_dispatch_attempts_total",
    "Attempts to place a dispatch at its platform, by channel and outcome "
    "(placed, adopted, failed, retried, skipped).",
    ["adapter", "outcome"],
)
DISPATCH_SECONDS = Histogram(
    "dispatcher_dispatch_seconds",
    "Time of one attempt to place a dispatch (the platform's answer included).",
    ["adapter"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WEBHOOKS = Counter(
    "dispatcher_webhooks_total",
    "Webhook deliveries received, by channel and result.",
    ["adapter", "result"],
)

#: webhook answer -> result label (see dispatcher/inbound/webhooks.py)
WEBHOOK_RESULTS = {
    202: "accepted",
    200: "duplicate",  # or "ignored": a 2xx answer names itself in its body
    410: "gone",
    400: "invalid",
    401: "signature_rejected",
    404: "no_adapter",
    413: "too_large",
}


def dispatch_outcome(result: Any) -> str:
    """Name what `send_dispatch` returned: a string outcome, or an RQ `Retry`."""
    if not isinstance(result, str):
        return "retried"
    if result in ("placed", "adopted", "failed"):
        return result
    if result == "already placed":
        return "adopted"
    return "skipped"


def observe_dispatch(func: Callable[[int], Any]) -> Callable[[int], Any]:
    """Count and time each attempt of `func(dispatch_id)`, labelled with the channel the task
    names through `label_dispatch` once it has read its row ("unknown" if it never does)."""

    @functools.wraps(func)
    def wrapper(dispatch_id: int, *args: Any, **kwargs: Any) -> Any:
        token = _ADAPTER.set("unknown")
        started = time.perf_counter()
        outcome = "crashed"
        try:
            result = func(dispatch_id, *args, **kwargs)
            outcome = dispatch_outcome(result)
            return result
        finally:
            adapter = _ADAPTER.get()
            _ADAPTER.reset(token)
            DISPATCHED.labels(adapter, outcome).inc()
            DISPATCH_SECONDS.labels(adapter).observe(time.perf_counter() - started)

    return wrapper


def count_dispatch(adapter: str, result: Any) -> None:
    """Count an attempt made inside another dispatch's task (a batch's extra, send_batch.py);
    its own task later counts a skip."""
    DISPATCHED.labels(adapter, dispatch_outcome(result)).inc()


#: the channel of the dispatch the running send task is about (its metric label)
_ADAPTER: ContextVar[str] = ContextVar("dispatcher_dispatch_adapter", default="unknown")


def label_dispatch(adapter: str) -> None:
    """Name the channel of the attempt `observe_dispatch` is timing: the task knows it from
    the row it claimed or read, so the label costs no query of its own."""
    _ADAPTER.set(adapter)


def count_webhook(view: Callable[..., Any]) -> Callable[..., Any]:
    """Count each answer of a webhook view (`observe_webhook`)."""

    @functools.wraps(view)
    def wrapper(adapter_name: str, *args: Any, **kwargs: Any) -> Any:
        from flask import make_response

        response = make_response(view(adapter_name, *args, **kwargs))
        observe_webhook(adapter_name, response)
        return response

    return wrapper


def observe_webhook(adapter_name: str, response: Any) -> None:
    """Count a webhook delivery by channel and by the answer it got."""
    from flask import current_app

    known = adapter_name in current_app.extensions["dispatcher.adapters"]
    result = WEBHOOK_RESULTS.get(response.status_code, str(response.status_code))
    if response.status_code == 200:
        result = (response.get_json(silent=True) or {}).get("status") or result
    WEBHOOKS.labels(adapter_name if known else "unknown", result).inc()


class RedisCollector:
    """Queue depths, the oldest waiting job's age and breaker states, read at scrape time."""

    def __init__(self, app) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from dispatcher.dispatch.breaker import CLOSED, HALF_OPEN, OPEN, breaker_for
        from dispatcher.ops.stats import queue_depths

        depth = GaugeMetricFamily(
            "dispatcher_queue_depth", "Jobs per queue and registry.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "dispatcher_queue_oldest_job_seconds",
            "Age of the oldest job waiting in each queue (0 when empty).",
            labels=["queue"],
        )
        breaker = GaugeMetricFamily(
            "dispatcher_breaker_state",
            "Circuit breaker per connection (connection empty: calls made without one): "
            "1 for its current state, 0 for the others.",
            labels=["adapter", "connection", "state"],
        )
        up = GaugeMetricFamily("dispatcher_redis_up", "1 if Redis answered this scrape.")
        try:
            for q in queue_depths(self.app):
                for state in ("queued", "running", "scheduled", "failed"):
                    depth.add_metric([q.name, state], getattr(q, state))
                oldest.add_metric([q.name], q.oldest_seconds)
            with self.app.app_context():
                for adapter, connection_id, key in breaker_keys(self.app):
                    current = breaker_for(key).snapshot().state
                    for state in (CLOSED, OPEN, HALF_OPEN):
                        value = 1.0 if state == current else 0.0
                        breaker.add_metric([adapter, connection_id, state], value)
        except SQLAlchemyError as exc:
            log.warning("metrics: database unreachable, no breaker states (%s)", exc)
        except RedisError as exc:
            log.warning("metrics: Redis unreachable (%s)", exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield from (up, depth, oldest, breaker)


def breaker_keys(app) -> list[tuple[str, str, str]]:
    """(adapter, connection id or "", breaker key) for every breaker a call can use: one per
    connection (breakers are per connection), and one per adapter for calls without one.
    Needs an app context (the connections come from the database)."""
    from dispatcher.dispatch.breaker import breaker_key
    from dispatcher.extensions import db
    from dispatcher.models import Connection

    keys = [
        (name, "", breaker_key(name, None))
        for name in app.extensions["dispatcher.adapters"].names()
    ]
    rows = db.session.execute(select(Connection.id, Connection.adapter).order_by(Connection.id))
    keys += [(adapter, str(row_id), breaker_key(adapter, row_id)) for row_id, adapter in rows]
    db.session.rollback()  # a read at scrape time: no transaction is left open
    return keys


class FolderCollector:
    """prometheus-client's multiprocess files under a folder and its sub-folders, summed.

    One host shares one folder; containers share a volume with one sub-folder each (their
    pids repeat, and the files are named by pid), and the web service reads from the top."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self):
        files = glob.glob(os.path.join(self.path, "**", "*.db"), recursive=True)
        return MultiProcessCollector.merge(files, accumulate=True)


def render(app) -> bytes:
    """The exposition text for this host: every process's counters plus Redis's facts."""
    registry = CollectorRegistry()
    if MULTIPROCESS:
        registry.register(FolderCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    else:  # one process (tests, `flask run`): its own counters
        for collector in (DISPATCHED, DISPATCH_SECONDS, WEBHOOKS):
            registry.register(collector)
    registry.register(RedisCollector(app))
    return generate_latest(registry)
