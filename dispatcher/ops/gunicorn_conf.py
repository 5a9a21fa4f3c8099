"""gunicorn settings that `dispatcher web` adds: a worker that exits leaves its metrics to
the multiprocess folder's dead-process handling (prometheus-client's own rule)."""

from __future__ import annotations


def child_exit(server, worker) -> None:
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
