"""`queues.enqueue_many_once` writes the job hashes itself, from a template per (function,
options), and sends its script by SHA. These tests hold it to RQ's own behaviour: the hash
RQ's `enqueue` writes, a real worker running the jobs with their options honoured, one job
per id, and a Redis that has never seen the script."""

from __future__ import annotations

import time

import pytest
from fakes import rq_tasks
from redis.exceptions import ResponseError
from rq import Retry, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.timeouts import JobTimeoutException
from rq.utils import now as rq_now
from rq.utils import str_to_date, utcformat

from dispatcher import job_templates
from dispatcher.queues import (
    INBOUND,
    enqueue_many_once,
    enqueue_many_once_sent,
    get_queue,
    redis_connection,
)

RECORD = "fakes.rq_tasks.record"
#: the per-job stamps, and the fields RQ writes empty (Job.restore reads a missing one the same)
STAMPS = {b"created_at", b"enqueued_at"}


def run_burst(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def trace() -> list[str]:
    return [v.decode() for v in redis_connection().lrange(rq_tasks.TRACE, 0, -1)]


def test_the_hash_is_the_one_rq_enqueue_writes(app):
    queue = get_queue(INBOUND)
    options = {"retry": Retry(max=3, interval=[1, 5], enqueue_at_front=True),
               "result_ttl": 0, "failure_ttl": 3600}  # fmt: skip
    queue.enqueue(RECORD, 7, job_id="by-rq", job_timeout=45, **options)
    assert enqueue_many_once(INBOUND, RECORD, [("by-us", (7,))], job_timeout=45, **options) == 1

    conn = queue.connection
    ours, theirs = conn.hgetall(Job.key_for("by-us")), conn.hgetall(Job.key_for("by-rq"))
    theirs = {k: v for k, v in theirs.items() if v != b""}
    assert {k: v for k, v in ours.items() if k not in STAMPS} == {
        k: v for k, v in theirs.items() if k not in STAMPS
    }
    assert ours.keys() >= STAMPS
    assert queue.get_job_ids() == ["by-rq", "by-us"]
    job = queue.fetch_job("by-us")
    assert (job.func_name, job.args, job.kwargs) == (RECORD, (7,), {})
    assert (job.timeout, job.result_ttl, job.failure_ttl) == (45, 0, 3600)
    assert (job.retries_left, job.retry_intervals) == (3, [1, 5])
    assert job.description == "fakes.rq_tasks.record(7)"
    assert job.get_status() == JobStatus.QUEUED


def test_a_real_worker_runs_them_and_deletes_them_at_result_ttl_0(app):
    queue = get_queue(INBOUND)
    calls = [(f"rec-{i}", (i,)) for i in range(3)]
    assert enqueue_many_once(INBOUND, RECORD, calls) == 3
    run_burst(queue)
    assert trace() == ["0", "1", "2"]
    assert not any(queue.connection.exists(Job.key_for(job_id)) for job_id, _ in calls)
    assert queue.count == 0


def test_a_failing_job_is_retried_then_kept_for_its_failure_ttl(app):
    queue = get_queue(INBOUND)
    pushed = enqueue_many_once(
        INBOUND, "fakes.rq_tasks.fail", [("failing", (1,))], retry=Retry(max=1), failure_ttl=500
    )
    assert pushed == 1
    run_burst(queue)  # the first run fails, its retry (interval 0) is queued and runs too
    assert trace() == ["failed 1", "failed 1"]
    assert "failing" in FailedJobRegistry(queue=queue).get_job_ids()
    assert 400 < queue.connection.ttl(Job.key_for("failing")) <= 500


def test_the_job_timeout_stops_a_job_that_runs_too_long(app):
    queue = get_queue(INBOUND)
    enqueue_many_once(INBOUND, "fakes.rq_tasks.sleep_for", [("sleepy", (5,))], job_timeout=1)
    started = time.monotonic()
    run_burst(queue)
    assert time.monotonic() - started < 4
    assert trace() == []
    job = Job.fetch("sleepy", connection=queue.connection)
    assert job.get_status() == JobStatus.FAILED
    assert JobTimeoutException.__name__ in job.latest_result().exc_string


def test_options_that_differ_give_jobs_that_differ(app):
    """The template is remembered per options: a second call with other options must not
    get the first call's timeout or retries."""
    queue = get_queue(INBOUND)
    enqueue_many_once(INBOUND, RECORD, [("a", (1,))], job_timeout=30, retry=Retry(max=2))
    enqueue_many_once(INBOUND, RECORD, [("b", (1,))], job_timeout=90, retry=Retry(max=4))
    enqueue_many_once(INBOUND, RECORD, [("c", (1,))])
    a, b, c = (queue.fetch_job(i) for i in "abc")
    assert (a.timeout, a.retries_left) == (30, 2)
    assert (b.timeout, b.retries_left) == (90, 4)
    assert (c.timeout, c.retries_left) == (queue._default_timeout, None)


def test_one_id_twice_in_one_call_is_queued_once(app):
    queue = get_queue(INBOUND)
    assert enqueue_many_once(INBOUND, RECORD, [("twice", (1,)), ("twice", (2,))]) == 1
    assert queue.get_job_ids() == ["twice"]
    assert queue.fetch_job("twice").args == (1,)


@pytest.mark.parametrize("with_also", [False, True])
def test_a_redis_that_never_saw_the_script_is_given_it_once(app, with_also):
    """A new or restarted Redis answers NOSCRIPT: the jobs are sent again after loading it,
    and the caller's own commands (`also`) are not run twice."""
    conn = redis_connection()
    conn.script_flush()
    also = (lambda pipe: pipe.incr("test:also")) if with_also else None
    pushed = enqueue_many_once(INBOUND, RECORD, [("fresh-1", (1,)), ("fresh-2", (2,))], also=also)
    assert pushed == 2
    assert conn.get("test:also") == (b"1" if with_also else None)
    assert get_queue(INBOUND).get_job_ids() == ["fresh-1", "fresh-2"]
    run_burst(get_queue(INBOUND))
    assert trace() == ["1", "2"]


def test_an_error_in_the_callers_commands_is_raised(app):
    conn = redis_connection()
    conn.set("test:not-a-list", "x")
    with pytest.raises(ResponseError):
        enqueue_many_once(
            INBOUND, RECORD, [("after-error", (1,))], also=lambda p: p.lpush("test:not-a-list", 1)
        )


def test_a_bad_job_id_is_refused_before_anything_is_sent(app):
    with pytest.raises(ValueError):
        enqueue_many_once(INBOUND, RECORD, [("ok", (1,)), ("not ok!", (2,))])
    assert get_queue(INBOUND).count == 0


def test_the_stamp_is_written_as_rq_writes_its_timestamps(app):
    before = utcformat(rq_now())
    written = job_templates.stamp().decode()
    assert len(written) == len(before) and written.endswith("Z")
    assert before <= written <= utcformat(rq_now())
    assert utcformat(str_to_date(written)) == written  # RQ reads it back to the same instant


# -- sent now, answered later (enqueue_many_once_sent) --------------------------------------
def test_a_push_sent_now_is_in_redis_before_its_answer_is_read(app):
    """The command goes out at once, on a connection of its own: other commands run on the
    client meanwhile, and the jobs are already queued when the caller reads the answer,
    hash for hash the ones `enqueue_many_once` writes. A real worker runs them."""
    conn = redis_connection()
    answer = enqueue_many_once_sent(INBOUND, RECORD, [("sent-1", (1,)), ("sent-2", (2,))])
    deadline = time.monotonic() + 5
    while get_queue(INBOUND).count < 2 and time.monotonic() < deadline:
        conn.ping()  # the client's own connection is free while the answer waits
        time.sleep(0.01)
    assert get_queue(INBOUND).get_job_ids() == ["sent-1", "sent-2"]
    assert answer() == 2
    enqueue_many_once(INBOUND, RECORD, [("plain", (1,))])
    sent, plain = conn.hgetall(Job.key_for("sent-1")), conn.hgetall(Job.key_for("plain"))
    same = {b"data", b"description", b"created_at", b"enqueued_at"}
    assert {k: v for k, v in sent.items() if k not in same} == {
        k: v for k, v in plain.items() if k not in same
    }
    run_burst(get_queue(INBOUND))
    assert trace() == ["1", "2", "1"]


def test_a_push_sent_to_a_redis_that_never_saw_the_script_is_sent_again(app):
    """NOSCRIPT comes back as the answer: the script is loaded and the jobs sent again, once;
    the connection the answer came on goes back to the pool, still usable."""
    conn = redis_connection()
    conn.script_flush()
    answer = enqueue_many_once_sent(INBOUND, RECORD, [("fresh", (1,))])
    assert answer() == 1
    assert get_queue(INBOUND).get_job_ids() == ["fresh"]
    for _ in range(5):  # every pooled connection answers in turn, none with a stale reply
        assert conn.ping() is True
    run_burst(get_queue(INBOUND))
    assert trace() == ["1"]


def test_a_push_that_already_has_a_queued_job_is_not_queued_twice(app):
    enqueue_many_once(INBOUND, RECORD, [("once", (1,))])
    assert enqueue_many_once_sent(INBOUND, RECORD, [("once", (2,))])() == 0
    assert get_queue(INBOUND).get_job_ids() == ["once"]
    assert get_queue(INBOUND).fetch_job("once").args == (1,)
