"""The SQLite write gate: hot writers of different processes and threads never hold it at
once, the next waiter gets it as soon as it is free, and it is nothing off SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from dispatcher.write_gate import gate_path, hold

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys, time
from dispatcher.write_gate import hold
path, start_at, hold_for = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
time.sleep(max(0.0, start_at - time.time()))
asked = time.time()
with hold(path):
    got = time.time()
    time.sleep(hold_for)
    left = time.time()
print(json.dumps({"asked": asked, "got": got, "left": left}))
"""


def test_two_processes_never_hold_the_gate_at_once(tmp_path):
    path = str(tmp_path / "app.db.gate")
    start_at = time.time() + 1.5  # both children are up by then and ask together
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, path, str(start_at), "0.4"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    first, second = sorted((json.loads(c.communicate(timeout=30)[0]) for c in children),
                           key=lambda r: r["got"])  # fmt: skip
    # contention happened: the second asked while the first held the gate
    assert second["asked"] < first["left"]
    # it waited for the first to leave, and got the gate promptly when it did
    assert second["got"] >= first["left"]
    assert second["got"] - first["left"] < 0.25


def test_threads_of_one_process_take_turns_and_a_thread_may_nest(tmp_path):
    path = str(tmp_path / "app.db.gate")
    inside, overlaps = [], []
    lock = threading.Lock()

    def writer() -> None:
        for _ in range(20):
            with hold(path), hold(path):  # nested in one thread: no self-deadlock
                with lock:
                    inside.append(1)
                    if len(inside) > 1:
                        overlaps.append(len(inside))
                time.sleep(0.001)
                with lock:
                    inside.pop()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert overlaps == []


def test_the_gate_is_a_file_beside_a_sqlite_database_and_nothing_elsewhere():
    assert gate_path(make_url("sqlite:////srv/dispatcher/app.db")) == "/srv/dispatcher/app.db.gate"
    assert gate_path(make_url("sqlite://")) is None
    assert gate_path(make_url("sqlite:///:memory:")) is None
    assert gate_path(make_url("postgresql+psycopg://u@db/dispatcher")) is None


def test_no_gate_is_a_plain_block():
    ran = []
    with hold(None), hold(None):
        ran.append(True)
    assert ran == [True]
