"""The RQ worker model: a non-forking worker that runs each job in a fresh app context.

Measured (RQ-NOTES): a fork per job drains about 3x fewer jobs than SimpleWorker here, so we
run SimpleWorker and keep one bad job from killing it with job timeouts and RQ's own
exception handling.
"""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker

from dispatcher.extensions import db


class AppWorker(SimpleWorker):
    """SimpleWorker that gives every job its own app context and database session."""

    flask_app: Flask

    def perform_job(self, job, queue):  # noqa: D401 - RQ hook
        with self.flask_app.app_context():
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()
