"""gunicorn settings that `dispatcher web` adds: a worker that exits leaves its metrics to
the multiprocess folder's dead-process handling (prometheus-client's own rule)."""

from __future__ import annotations


def child_exit(server, worker) -> None:
    import os

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


#: seconds a thread may hold the GIL while another waits (Python's default is 0.005)
SWITCH_INTERVAL = 0.001


def post_fork(server, worker) -> None:
    """A shorter GIL switch interval in each web worker. A webhook's writer thread gives the
    GIL up for its fsync or Redis round trip and, on return, waited up to the whole interval
    while a sibling thread parsed the next request, with every other waiting webhook queued
    behind it: at 750 webhooks/s (half the floor's rate) p99 went from 51-568 ms to 9-32 ms
    (`bench/bench_intake.py`). The floor's gunicorn is given the same setting."""
    import sys

    sys.setswitchinterval(SWITCH_INTERVAL)


def post_worker_init(worker) -> None:
    """Once the worker has loaded the app: record its GC pauses if the bench asks."""
    from dispatcher.ops import gc_pauses

    gc_pauses.install()


def worker_exit(server, worker) -> None:
    from dispatcher.ops import gc_pauses

    gc_pauses.dump()
