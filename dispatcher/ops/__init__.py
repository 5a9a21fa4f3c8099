"""What an operator needs: health and readiness, metrics, structured logs, checks, stats,
and the scheduler's lease. Nothing here changes a job's state."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

#: the folder, under the instance folder, where every process of one host writes its metrics
METRICS_DIRNAME = "prometheus"


def prepare_process(instance_path: Path) -> Path:
    """Point prometheus-client at the instance's multiprocess folder, before it is imported.

    Called by the `dispatcher` command (web, worker, scheduler, up) first thing, so gunicorn
    workers and RQ workers of one host share their counters. An operator's own
    PROMETHEUS_MULTIPROC_DIR wins."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or instance_path / METRICS_DIRNAME)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def init_app(app: Flask) -> None:
    """Health, readiness and metrics routes; request ids; JSON logs when asked for; the
    admins' RQ dashboard."""
    from dispatcher.ops import admin, health, logs

    logs.init_app(app)
    app.register_blueprint(health.bp)
    admin.init_app(app)
