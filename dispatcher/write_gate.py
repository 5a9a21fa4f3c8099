"""One hot writer at a time on SQLite, across this host's processes, queued by the kernel.

SQLite has one write lock per database. A writer that finds it taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ... 100 ms between tries, so under a burst the
writers sleep while the lock sits free: webhook intake under 8 concurrent senders spent most
of a request's wall time asleep in its INSERT (py-spy, `bench/profile_processes.py`), and two
dispatch workers drained slower than one.

The hot writers (webhook intake, the dispatch worker's claim and placements) take this gate
first: a thread lock within the process, then an `flock` on a file beside the database across
processes. Both hand over to the next waiter the moment they are released. SQLite's own lock
is still what keeps writes safe; the gate only lines the hot writers up so they rarely meet
it. Other writers (pages, the apply worker) do not take it and are no less safe for that. On
any other database the gate does nothing: PostgreSQL queues row locks itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

from sqlalchemy.engine import URL

from dispatcher.extensions import db

_local = threading.local()
_thread_lock = threading.Lock()
_files: dict[tuple[int, str], int] = {}  # (pid, path) -> fd: a forked child opens its own


def write_gate() -> contextlib.AbstractContextManager[None]:
    """Hold the gate of the app's database for the block (a no-op off SQLite)."""
    return hold(gate_path(db.engine.url))


@contextlib.contextmanager
def hold(path: str | None) -> Iterator[None]:
    """Hold the gate file `path` for the block; re-entrant within a thread; None: no gate."""
    if path is None or getattr(_local, "depth", 0):
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            yield
        finally:
            _local.depth -= 1
        return
    with _thread_lock:
        fd = _file(path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _local.depth = 1
        try:
            yield
        finally:
            _local.depth = 0
            fcntl.flock(fd, fcntl.LOCK_UN)


def gate_path(url: URL) -> str | None:
    """The gate file beside a SQLite database file; None for any other database."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return f"{url.database}.gate"


def _file(path: str) -> int:
    key = (os.getpid(), path)
    fd = _files.get(key)
    if fd is None:
        fd = _files[key] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return fd
