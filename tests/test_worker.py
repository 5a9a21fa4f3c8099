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
