"""The reconciler: the database is the truth, so wiping Redis loses nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from fakes.work import deliver
from rq import Queue, Retry
from rq.executions import Execution
from rq.job import JobStatus

from dispatch.helpers import delegated
from dispatcher import reconcile
from dispatcher.dispatch import backoff, cancel, liveness, push, send, service
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import DispatchState, Event, InboundEvent, PushState, Review
from dispatcher.queues import DISPATCH, INBOUND, get_queue, redis_connection


def queued_ids(name: str) -> list[str]:
    return get_queue(name).get_job_ids()


@pytest.fixture
def three(goal):
    jobs = [delegated(goal, title=f"post {i}") for i in range(3)]
    return service.dispatch_goal(goal), jobs


def test_wiping_redis_loses_no_dispatch(three, redis_server):
    dispatches, _ = three
    expected = sorted(send.send_job_id(d.id) for d in dispatches)
    assert sorted(queued_ids(DISPATCH)) == expected
    redis_server.flushall()
    assert queued_ids(DISPATCH) == []
    counts = reconcile.reconcile()
    assert counts["dispatches"] == 3
    assert sorted(queued_ids(DISPATCH)) == expected
    assert reconcile.reconcile()["dispatches"] == 0  # the same dispatch is never queued twice
    assert len(queued_ids(DISPATCH)) == 3


def test_a_requeued_dispatch_waits_for_its_backoff(three, redis_server, sandbox):
    sandbox.control(fail_rate=1, pause_workers=True)
    dispatches, _ = three
    first = dispatches[0]
    assert isinstance(send.send_dispatch(first.id), Retry)
    redis_server.flushall()  # the scheduled retry is gone with Redis
    reconcile.reconcile()
    assert send.send_job_id(first.id) in queued_ids(DISPATCH)
    db.session.refresh(first)
    attempts = first.attempts
    assert isinstance(send.send_dispatch(first.id), Retry)  # not due: it reschedules itself
    db.session.refresh(first)
    assert first.attempts == attempts


def test_received_webhooks_are_applied_again(app, redis_server):
    inbound = InboundEvent(adapter="sandbox", event_id="msg_1", body="{}", status="received")
    applied = InboundEvent(adapter="sandbox", event_id="msg_2", body="{}", status="applied")
    db.session.add_all([inbound, applied])
    db.session.commit()
    assert reconcile.reconcile()["inbound"] == 1
    assert queued_ids(INBOUND) == [f"inbound-{inbound.id}"]
    assert reconcile.reconcile()["inbound"] == 0


def test_owed_cancels_are_requeued(goal, sandbox):
    sandbox.control(pause_workers=True)
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    send.send_dispatch(dispatch.id)
    service.cancel_job(job)
    redis_connection().flushall()
    assert reconcile.reconcile()["cancels"] == 1
    assert cancel.cancel_job_id(dispatch.id) in queued_ids(DISPATCH)
    cancel.cancel_at_platform(dispatch.id)
    redis_connection().flushall()
    assert reconcile.reconcile()["cancels"] == 0  # settled


def test_unpushed_acceptances_are_pushed_until_paid_or_refused(goal, sandbox):
    from dispatcher.dispatch import review

    sandbox.control(pause_workers=True)
    job = delegated(goal)
    dispatch = service.dispatch_job(job)
    send.send_dispatch(dispatch.id)
    db.session.refresh(dispatch)
    # a submission the platform does not know: pushing the acceptance is refused for good
    delivery = deliver(dispatch, "sub_1")
    accepted = review.accept(delivery, rating=5)
    redis_connection().flushall()
    assert reconcile.reconcile()["reviews"] == 1
    assert f"review-{accepted.id}" in queued_ids(DISPATCH)
    redis_connection().flushall()
    assert push.push_review(accepted.id).startswith("refused: ")
    assert db.session.get(Review, accepted.id).push_state == PushState.REFUSED
    assert db.session.query(Event).filter_by(job_id=job.id, kind="review_push_failed").count() == 1
    assert reconcile.reconcile()["reviews"] == 0
    assert db.session.get(Review, accepted.id) is not None


def test_a_dead_workers_job_is_handed_back_quickly(three, redis_server):
    conn = redis_connection()
    queue = Queue(DISPATCH, connection=conn)
    job = queue.fetch_job(queued_ids(DISPATCH)[0])
    # A worker took the job and died: it is in the started registry, nobody keeps it alive.
    with conn.pipeline() as pipe:
        queue.remove(job, pipeline=pipe)
        job.set_status(JobStatus.STARTED, pipeline=pipe)
        execution = Execution.create(job, ttl=600, pipeline=pipe, worker_name="w-dead")
        pipe.execute()
    conn.hset(execution.key, "created_at", time.time() - 60)  # it started a minute ago
    assert job.id in liveness.live_job_ids(conn, [job.id])  # "started" looks live to RQ
    assert liveness.recover_abandoned(conn) == [job.id]
    job.refresh()
    assert job.get_status() == JobStatus.QUEUED  # RQ's abandoned-job retry...
    assert queue.get_job_ids()[0] == job.id  # ...ahead of the backlog
    assert job.retries_left == backoff.CRASH_RETRY.max - 1
    assert job.id in liveness.live_job_ids(conn, [job.id])


def test_a_live_workers_job_is_left_alone(three, redis_server):
    conn = redis_connection()
    queue = Queue(DISPATCH, connection=conn)
    job = queue.fetch_job(queued_ids(DISPATCH)[0])
    with conn.pipeline() as pipe:
        queue.remove(job, pipeline=pipe)
        job.set_status(JobStatus.STARTED, pipeline=pipe)
        execution = Execution.create(job, ttl=600, pipeline=pipe, worker_name="w-busy")
        pipe.execute()
    conn.hset(execution.key, "created_at", time.time() - 60)
    liveness.mark_alive(conn, "w-busy")
    assert liveness.recover_abandoned(conn) == []
    assert job.get_status(refresh=True) == JobStatus.STARTED


def test_a_job_marked_queued_but_missing_from_its_queue_is_requeued(three, redis_server):
    conn = redis_connection()
    dispatches, _ = three
    job_id = send.send_job_id(dispatches[0].id)
    conn.lrem(get_queue(DISPATCH).key, 0, job_id)  # lost between pop and registry write
    conn.hset(f"rq:job:{job_id}", "enqueued_at", "2020-01-01T00:00:00.000000Z")
    assert job_id not in liveness.live_job_ids(conn, [job_id])
    assert reconcile.reconcile()["dispatches"] == 1
    assert job_id in queued_ids(DISPATCH)


def test_pending_rows_stay_pending_when_redis_is_down(goal, app):
    app.extensions["dispatcher.redis"] = __import__("redis").Redis(
        unix_socket_path="/nonexistent.sock",
        retry=__import__("redis.retry").retry.Retry(
            __import__("redis.backoff").backoff.NoBackoff(), 0
        ),
    )
    job = delegated(goal)
    dispatch = service.dispatch_job(job)  # committed; the enqueue fails quietly
    assert dispatch.state == DispatchState.PENDING and job.status == Status.QUEUED


def test_scheduled_jobs_left_overdue_are_enqueued_by_any_worker(three, redis_server):
    conn = redis_connection()
    queue = Queue(DISPATCH, connection=conn)
    job = queue.fetch_job(queued_ids(DISPATCH)[0])
    queue.remove(job)
    # Scheduled for a minute ago, and no RQ scheduler holds the lock to move it (its worker
    # was killed): the reconciler must not count it as live...
    queue.schedule_job(job, datetime.now(UTC) - timedelta(minutes=1))
    assert job.id not in liveness.live_job_ids(conn, [job.id])
    # ...and a worker's maintenance pass puts it back in its queue.
    assert liveness.rescue_overdue(conn) == [job.id]
    assert job.id in queue.get_job_ids()
    assert queue.scheduled_job_registry.get_job_ids() == []


def test_scheduled_jobs_on_time_are_left_to_the_scheduler(three, redis_server):
    conn = redis_connection()
    queue = Queue(DISPATCH, connection=conn)
    job = queue.fetch_job(queued_ids(DISPATCH)[0])
    queue.remove(job)
    queue.schedule_job(job, datetime.now(UTC) + timedelta(seconds=30))
    assert job.id in liveness.live_job_ids(conn, [job.id])
    assert liveness.rescue_overdue(conn) == []


def test_a_host_whose_clock_runs_ahead_leaves_a_just_started_job_alone(
    three, redis_server, monkeypatch
):
    """Issue 13: liveness is judged by Redis's clock. A job that started a moment ago on a
    worker whose key was lost (Redis wiped, the heartbeat not back yet) is left alone, even
    by a host whose own clock runs 30 s ahead of the worker's."""
    conn = redis_connection()
    queue = Queue(DISPATCH, connection=conn)
    job = queue.fetch_job(queued_ids(DISPATCH)[0])
    with conn.pipeline() as pipe:
        queue.remove(job, pipeline=pipe)
        job.set_status(JobStatus.STARTED, pipeline=pipe)
        Execution.create(job, ttl=600, pipeline=pipe, worker_name="w-new")
        pipe.execute()
    liveness.mark_started(conn, "w-new", job.id)
    conn.delete(liveness.ALIVE_PREFIX + "w-new")  # the worker's key is lost; it lives on
    ahead = time.time() + 30
    monkeypatch.setattr(time, "time", lambda: ahead)  # this host only; Redis keeps its own
    assert liveness.recover_abandoned(conn) == []
    assert job.get_status(refresh=True) == JobStatus.STARTED


def test_stale_queued_jobs_are_checked_with_one_read_of_the_queue(three, redis_server):
    """Issue 12: a backlog queued longer than STALE_SECONDS is checked against one read of
    its queue, not one LPOS per job over the whole queue (quadratic in the backlog)."""
    conn = redis_connection()
    dispatches, _ = three
    job_ids = [send.send_job_id(d.id) for d in dispatches]
    for job_id in job_ids:
        conn.hset(f"rq:job:{job_id}", "enqueued_at", "2020-01-01T00:00:00.000000Z")
    conn.lrem(get_queue(DISPATCH).key, 0, job_ids[0])  # lost between pop and registry write

    def calls(name: str) -> int:
        return conn.info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0)

    before = {name: calls(name) for name in ("lpos", "lrange")}
    assert liveness.live_job_ids(conn, job_ids) == set(job_ids[1:])
    assert calls("lpos") == before["lpos"]
    assert calls("lrange") == before["lrange"] + 1
