"""Request ids and JSON log lines (issue 13)."""

from __future__ import annotations

import io
import json
import logging

from dispatcher.ops import logs


def test_a_given_request_id_is_kept_and_echoed(client):
    answer = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert answer.headers["X-Request-Id"] == "abc-123"


def test_a_missing_or_unsafe_request_id_is_replaced(client):
    made = client.get("/healthz").headers["X-Request-Id"]
    assert len(made) == 32
    forged = client.get("/healthz", headers={"X-Request-Id": "x\u2028injected line"})
    assert forged.headers["X-Request-Id"] not in ("x\u2028injected line", made)


def test_json_lines_carry_the_bound_ids():
    logs.clear()
    logs.bind(request_id="r1", dispatch_id=7, job_id=3)
    record = logging.LogRecord(
        "dispatcher.test", logging.WARNING, __file__, 1, "sent %s", ("x",), None
    )
    logs.ContextFilter().filter(record)
    line = json.loads(logs.JsonFormatter().format(record))
    logs.clear()
    assert line["message"] == "sent x" and line["level"] == "WARNING"
    assert (line["request_id"], line["dispatch_id"], line["job_id"]) == ("r1", 7, 3)


def test_a_request_logs_its_id_in_json(app, client):
    @app.get("/_log-something")
    def _log_something():
        logging.getLogger("dispatcher.test").warning("inside")
        return "ok"

    out = io.StringIO()
    handler = logging.StreamHandler(out)  # what logs.configure("json") installs on the root
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("dispatcher.test")
    logger.addHandler(handler)
    try:
        client.get("/_log-something", headers={"X-Request-Id": "req-42"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(out.getvalue().splitlines()[0])
    assert (line["message"], line["request_id"]) == ("inside", "req-42")


def test_rq_jobs_bind_their_row_ids():
    class FakeJob:  # only what bind_rq_job reads from an rq Job
        id = "send-9"
        func_name = "dispatcher.dispatch.send.send_dispatch"
        args, kwargs = (9,), {}

        @staticmethod
        def func(dispatch_id: int) -> None: ...

    logs.bind_rq_job(FakeJob())
    bound = logs.context()
    logs.clear()
    assert bound == {"rq_job": "send-9", "task": "send_dispatch", "dispatch_id": 9}
