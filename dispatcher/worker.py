"""The RQ worker model: a non-forking worker that runs each job in a fresh app context.

Measured (RQ-NOTES): a fork per job drains about 3x fewer jobs than SimpleWorker here, so we
run SimpleWorker and keep one bad job from killing it with job timeouts and RQ's own
exception handling. `dispatcher up` runs one worker per queue, so each dequeue is atomic
(BLMOVE needs a single queue).
"""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker

from dispatcher.extensions import db


class AppWorker(SimpleWorker):
    """SimpleWorker that gives every job its own app context and database session."""

    flask_app: Flask

    def perform_job(self, job, queue, *args, **kwargs):
        with self.flask_app.app_context():
            try:
                return super().perform_job(job, queue, *args, **kwargs)
            finally:
                db.session.remove()


def make_worker(app: Flask, queues: Sequence[Queue], connection: Redis) -> AppWorker:
    worker = AppWorker(list(queues), connection=connection, worker_ttl=60, maintenance_interval=60)
    worker.flask_app = app
    return worker
