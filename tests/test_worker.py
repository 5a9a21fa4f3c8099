"""The worker model (dispatcher/worker.py)."""

from __future__ import annotations

from dispatcher.queues import DISPATCH, get_queue, redis_connection
from dispatcher.worker import make_worker


def test_the_worker_waits_for_jobs_on_connections_that_outlast_the_wait(app):
    """An idle worker blocks on Redis for `dequeue_timeout` seconds; the socket it blocks on
    must wait longer, or every first idle wait ends in a timeout error (redis-py 8 opens
    connections with a 5 s timeout, our dequeue timeout). The reconciler uses the app's
    connection before the worker is made, so a pooled connection already exists."""
    connection = redis_connection(app)
    connection.ping()
    worker = make_worker(app, [get_queue(DISPATCH)], connection)
    pooled = connection.connection_pool.get_connection()
    try:
        assert pooled.socket_timeout is None or pooled.socket_timeout > worker.dequeue_timeout
    finally:
        connection.connection_pool.release(pooled)


def test_a_job_is_marked_young_in_the_round_trip_that_starts_it(app, run_jobs, monkeypatch):
    """The worker marks each job young (and itself alive) for the liveness check in the
    pipeline RQ sends to mark the job started, not in a round trip of its own (issue 12).
    It fails if the marks are missing, or sent on their own."""
    from redis.client import Pipeline

    from dispatcher.dispatch import liveness

    marked: list[bool] = []
    original = liveness.mark_started

    def mark_started(connection, *args):
        marked.append(isinstance(connection, Pipeline) and connection.transaction)
        return original(connection, *args)

    monkeypatch.setattr(liveness, "mark_started", mark_started)
    conn = redis_connection(app)
    with app.app_context():
        job = get_queue(DISPATCH).enqueue("builtins.len", "abc")
    assert run_jobs() == 1
    assert marked == [True]  # once, in RQ's own MULTI
    worker_name = conn.get(liveness.YOUNG_PREFIX + job.id)
    assert worker_name and conn.exists(liveness.ALIVE_PREFIX + worker_name.decode())


def test_a_heartbeat_is_one_round_trip(app):
    """RQ sends a heartbeat's three commands one by one, after every dequeue; the worker
    sends them in one round trip (issue 12). It fails on RQ's own heartbeat."""
    import redis.connection

    connection = redis_connection(app)
    worker = make_worker(app, [get_queue(DISPATCH)], connection)
    worker.register_birth()
    sent: list[int] = []
    cls = redis.connection.AbstractConnection
    original = cls.send_packed_command

    def counted(conn, *args, **kwargs):
        sent.append(1)
        return original(conn, *args, **kwargs)

    cls.send_packed_command = counted
    try:
        worker.heartbeat()
    finally:
        cls.send_packed_command = original
    assert len(sent) == 1
    assert connection.hget(worker.key, "last_heartbeat")
    assert connection.ttl(worker.key) > 0
