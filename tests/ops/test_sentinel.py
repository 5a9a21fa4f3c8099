"""REDIS_URL through Redis Sentinel (issue 13): a master, a replica and a Sentinel from
Debian's packages; the master is SIGKILLed and the app keeps working on the promoted replica."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time

import pytest

from dispatcher import create_app
from dispatcher.redis_urls import parse_sentinel

PASSWORD = "s3ntinel-test"
needs_redis = pytest.mark.skipif(
    not (shutil.which("redis-server") and shutil.which("redis-sentinel")),
    reason="apt-get install redis-server redis-sentinel",
)


def test_sentinel_urls_parse():
    hosts, service, kwargs = parse_sentinel("redis+sentinel://:p%40ss@h1:26379,h2:26380/main/2")
    assert hosts == [("h1", 26379), ("h2", 26380)]
    assert (service, kwargs) == ("main", {"password": "p@ss", "db": 2})
    assert parse_sentinel("rediss+sentinel://h:1/m")[2] == {"ssl": True}
    with pytest.raises(ValueError):
        parse_sentinel("redis+sentinel://h:1")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(binary: str, config: str, path) -> subprocess.Popen:
    path.write_text(config)
    return subprocess.Popen([binary, str(path)], stdout=subprocess.DEVNULL)


def _wait(probe, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = probe()
        except Exception:  # a server that is starting or failing over: ask again
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"nothing after {seconds}s")


@pytest.fixture
def sentinel_cluster(tmp_path):
    import redis

    master, replica, sentinel = _port(), _port(), _port()
    common = f'bind 127.0.0.1\nsave ""\ndaemonize no\nrequirepass {PASSWORD}\ndir {tmp_path}\n'
    common += f"masterauth {PASSWORD}\nrepl-diskless-sync-delay 0\n"
    procs = [
        _start("redis-server", f"port {master}\n{common}", tmp_path / "master.conf"),
        _start(
            "redis-server",
            f"port {replica}\n{common}replicaof 127.0.0.1 {master}\n",
            tmp_path / "replica.conf",
        ),
    ]
    client = redis.Redis(port=replica, password=PASSWORD)
    _wait(lambda: client.info("replication")["master_link_status"] == "up", 20)
    procs.append(
        _start(
            "redis-sentinel",
            f"port {sentinel}\nbind 127.0.0.1\ndaemonize no\ndir {tmp_path}\n"
            f"sentinel monitor main 127.0.0.1 {master} 1\n"
            f"sentinel auth-pass main {PASSWORD}\n"
            "sentinel down-after-milliseconds main 1000\n"
            "sentinel failover-timeout main 5000\n",
            tmp_path / "sentinel.conf",
        )
    )
    watcher = redis.Redis(port=sentinel)
    _wait(lambda: watcher.sentinel_get_master_addr_by_name("main"), 10)
    yield {
        "master": procs[0],
        "master_port": master,
        "replica_port": replica,
        "url": f"redis+sentinel://:{PASSWORD}@127.0.0.1:{sentinel}/main",
    }
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


@needs_redis
def test_the_app_follows_a_failover(app_config, sentinel_cluster):
    from dispatcher.ops import logs
    from dispatcher.queues import MAINTENANCE, get_queue, redis_connection
    from dispatcher.worker import run_worker

    app = create_app({**app_config, "redis_url": sentinel_cluster["url"]})
    with app.app_context():
        conn = redis_connection()
        conn.set("before", "1")
        assert conn.connection_pool.get_master_address()[1] == sentinel_cluster["master_port"]
        assert app.test_client().get("/readyz").status_code == 200
        job = get_queue(MAINTENANCE).enqueue(logs.clear)
        run_worker(app, [MAINTENANCE], burst=True)  # a real worker, through the Sentinel
        assert job.get_status(refresh=True) == "finished"
        time.sleep(0.5)  # replication is asynchronous: give it a moment before the crash

        sentinel_cluster["master"].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _wait(lambda: conn.set("after", "1"), 30)
        took = time.monotonic() - killed
        assert conn.connection_pool.get_master_address()[1] == sentinel_cluster["replica_port"]
        assert conn.get("after") == b"1"
        assert took < 15, f"the promoted replica answered only after {took:.1f}s"
        readyz = _wait(lambda: app.test_client().get("/readyz").status_code == 200, 10)
        assert readyz
        from dispatcher.extensions import db

        db.session.remove()
        db.engine.dispose()  # no connection to the test database is left to the collector
    print(f"sentinel failover: writes resumed {took:.1f}s after SIGKILL of the master")
