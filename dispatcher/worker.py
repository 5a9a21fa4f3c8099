"""The RQ worker model: a non-forking worker that runs each job in a fresh app context.

Measured (RQ-NOTES): a fork per job drains about 3x fewer jobs than SimpleWorker here, so we
run SimpleWorker and keep one bad job from killing it with job timeouts (every task is
enqueued with one) and RQ's own exception handling. `dispatcher up` runs one worker per
queue, so each dequeue is atomic (BLMOVE needs a single queue).

What makes a dead worker's job come back quickly (RQ's defaults take about 7 minutes):
- a thread keeps a 10-second liveness key alive (dispatch/liveness.py), so a killed worker
  is known dead within seconds, even in the middle of a long job;
- low TTLs: an idle worker wakes every 5 s (worker_ttl 20), and every maintenance pass
  (every 5 s) hands dead workers' jobs to RQ's abandoned-job handling, and enqueues jobs
  RQ's scheduler has left overdue (its lock dies with a killed worker only after a minute);
- the reconciler runs at start (and every 15 s from the scheduler), so whatever Redis lost
  while no worker ran is enqueued again from the database.
`run_worker` restarts the work loop after Redis goes away instead of exiting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from dispatcher.dispatch import liveness
from dispatcher.extensions import db
from dispatcher.ops import logs
from dispatcher.redis_urls import is_sentinel

log = logging.getLogger(__name__)

#: an idle worker wakes every WORKER_TTL - 15 s (RQ's dequeue timeout) for its maintenance
WORKER_TTL = 20
MAINTENANCE_INTERVAL = 5
RESTART_DELAY = 2.0


class AppWorker(SimpleWorker):
    """SimpleWorker that gives every job its own app context and database session, and
    proves it is alive from a thread."""

    flask_app: Flask
    #: the job whose start is still to be marked (liveness.mark_started), in RQ's pipeline
    _starting: str | None = None

    def perform_job(self, job, queue, *args, **kwargs):
        self._starting = job.id  # marked in RQ's own round trip (`heartbeat`), not one more
        with self.flask_app.app_context():
            logs.bind_rq_job(job)
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                self._starting = None
                logs.clear()
                db.session.remove()

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's heartbeat in one round trip (RQ sends its three commands one by one when
        given no pipeline, as it does right after each dequeue); the first one in the
        pipeline that prepares a job (marks it started) also marks it young and the worker
        alive. Issue 12: three round trips less between the dequeue and the task."""
        if pipeline is None:
            with self.connection.pipeline(transaction=False) as pipe:
                super().heartbeat(timeout, pipeline=pipe)
                pipe.execute()
            return
        super().heartbeat(timeout, pipeline=pipeline)
        if self._starting is not None:
            self._mark_started(pipeline)

    def _mark_started(self, connection) -> None:
        job_id, self._starting = self._starting, None
        liveness.mark_started(connection, self.name, job_id)

    def work(self, *args, **kwargs):
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), name="alive", daemon=True)
        beat.start()
        try:
            return super().work(*args, **kwargs)
        finally:
            stop.set()
            beat.join(timeout=2)

    def _beat(self, stop: threading.Event) -> None:
        while True:
            try:
                liveness.mark_alive(self.connection, self.name)
            except RedisError as exc:
                log.warning("worker %s: could not mark alive: %s", self.name, exc)
            if stop.wait(liveness.HEARTBEAT_SECONDS):
                return

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        try:  # every queue: any live worker rescues the jobs of any dead one
            liveness.recover_abandoned(self.connection)
            liveness.rescue_overdue(self.connection)
        except RedisError as exc:
            log.warning("worker %s: abandoned-job check failed: %s", self.name, exc)


def make_worker(app: Flask, queues: Sequence[Queue], connection: Redis) -> AppWorker:
    worker = AppWorker(
        list(queues),
        connection=connection,
        worker_ttl=WORKER_TTL,
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    worker.flask_app = app
    # RQ raises the pool's socket timeout above its blocking dequeue (dequeue + 10 s), but
    # only for connections opened from now on. redis-py >= 8 opens them with 5 s, which is
    # exactly our dequeue timeout, so a connection the app opened earlier (the reconciler's
    # at start) timed out on the first idle wait: an error logged and a second lost. Drop
    # those connections; the next ones are opened with RQ's timeout.
    connection.connection_pool.disconnect()
    connection.connection_pool.reset()
    return worker


def reconcile_now(app: Flask) -> None:
    """Run the reconciler once (at worker start). A failure is logged with its traceback
    and does not stop the worker: the scheduled reconciler will try again."""
    from dispatcher.reconcile import reconcile

    with app.app_context():
        try:
            reconcile()
        except Exception:
            log.exception("reconcile at worker start failed; the periodic one will retry")
        finally:
            db.session.remove()


def run_worker(app: Flask, queue_names: Sequence[str], *, burst: bool = False) -> None:
    """Reconcile, then work; if the loop ends because Redis went away, start it again."""
    from dispatcher.queues import get_queue, redis_connection

    reconcile_now(app)
    # RQ's scheduler rebuilds its connection from the pool's class and arguments, which a
    # Sentinel-managed pool cannot be rebuilt from: behind Sentinel, the maintenance pass
    # (liveness.rescue_overdue, every few seconds) moves due retries instead.
    rq_scheduler = not is_sentinel(app.config["SETTINGS"].redis_url)
    while True:
        worker = None
        try:
            with app.app_context():
                worker = make_worker(app, [get_queue(n) for n in queue_names], redis_connection())
            worker.work(burst=burst, with_scheduler=rq_scheduler, logging_level="INFO")
        except RedisError as exc:  # e.g. while registering, or no master during a failover
            log.warning("worker could not start (%s); retrying", exc)
        stopped = worker is not None and worker._shutdown_requested_date is not None
        if burst or stopped:  # SIGTERM / SIGINT
            return
        log.warning("worker loop ended without a stop request; restarting in %ss", RESTART_DELAY)
        time.sleep(RESTART_DELAY)
