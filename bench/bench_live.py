"""Live updates with 50 open pages: how long a change takes to reach every stream, and what
the streams cost the web server (nothing: they are served by `dispatcher live`).

Starts real processes on loopback: a Redis server, `dispatcher live` (the asyncio stream
server) and `dispatcher web` (gunicorn, 2 workers x 4 threads: the eight sync threads the
issue names). Opens `--clients` streams for one owner, then commits `--changes` job changes in
this process (the publish hook sends them after commit) and times each until every stream
has it. Also times a page of the web server with no stream open and with all of them open,
and the bare Redis pub/sub round trip (the floor of the latency). Prints the figures and
writes bench/results/live.json as [{"name", "value", "unit", "floor", "ratio", "target"}].

    .venv/bin/python bench/bench_live.py [--clients 50] [--changes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import RedisServer  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def open_streams(port: int, token: str, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET /events?token={token} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        socks.append(sock)
    for sock in socks:
        data = b""
        while b": open\n\n" not in data:
            data += sock.recv(4096)
        sock.setblocking(False)
    return socks


def until_all_have(socks: list[socket.socket], needle: bytes, timeout: float = 10) -> float:
    """Seconds until every socket has received `needle`."""
    start = time.perf_counter()
    selector = selectors.DefaultSelector()
    buffers = {}
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
        buffers[sock] = b""
    waiting = set(socks)
    while waiting:
        left = timeout - (time.perf_counter() - start)
        if left <= 0:
            raise TimeoutError(f"{len(waiting)} streams never got {needle!r}")
        for key, _ in selector.select(left):
            sock = key.fileobj
            buffers[sock] += sock.recv(65536)
            if needle in buffers[sock] and sock in waiting:
                waiting.discard(sock)
                buffers[sock] = b""
    selector.close()
    return time.perf_counter() - start


def page_times(url: str, n: int = 30, warm_up: int = 5) -> float:
    times = []
    for i in range(warm_up + n):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        if i >= warm_up:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def pubsub_floor(redis_url: str, n: int = 20) -> float:
    import redis

    conn = redis.Redis.from_url(redis_url)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("bench:floor")
    times = []
    for i in range(n):
        start = time.perf_counter()
        conn.publish("bench:floor", str(i))
        while pubsub.get_message(timeout=1) is None:
            pass
        times.append(time.perf_counter() - start)
    pubsub.close()
    return statistics.median(times)


def status_of(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="CI: 10 streams, 5 changes")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.changes = 10, 5

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        redis_server = RedisServer(tmp_path / "redis")
        redis_server.start()
        live_port, web_port = free_port(), free_port()
        env = {
            **os.environ,
            "DISPATCHER_INSTANCE": tmp,
            "DATABASE_URL": f"sqlite:///{tmp}/live.db",
            "REDIS_URL": redis_server.url,
            "SECRET_KEY": "bench-secret",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
            "LIVE_URL": f"http://127.0.0.1:{live_port}",
        }
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
        from flask_migrate import upgrade

        from dispatcher import create_app
        from dispatcher.extensions import db
        from dispatcher.live.server import make_token
        from dispatcher.models import Owner
        from dispatcher.planning import tree

        app = create_app({"instance_path": tmp_path})
        exe = [sys.executable, "-m", "dispatcher.cli"]
        procs: list[subprocess.Popen] = []
        try:
            with app.app_context():
                upgrade()
                owner = Owner(email="live@example.com", name="Live", timezone="UTC")
                owner.set_password("bench-pass")
                db.session.add(owner)
                db.session.commit()
                goal = tree.create_goal(owner.id, title="Live bench")
                jobs = [
                    tree.add_job(goal, title=f"Job {i}", mode="keep") for i in range(args.changes)
                ]
                token = make_token("bench-secret", owner.id)
            logs = open(tmp_path / "procs.log", "w")  # noqa: SIM115
            procs.append(
                subprocess.Popen([*exe, "live", "--port", str(live_port)], env=env,
                                 stdout=logs, stderr=logs)
            )  # fmt: skip
            procs.append(
                subprocess.Popen([*exe, "web", "--port", str(web_port)], env=env,
                                 stdout=logs, stderr=logs)
            )  # fmt: skip
            wait_http(f"http://127.0.0.1:{live_port}/health")
            page = f"http://127.0.0.1:{web_port}/login"
            wait_http(page)

            floor_page = page_times(page)
            floor_latency = pubsub_floor(redis_server.url)
            socks = open_streams(live_port, token, args.clients)
            with urllib.request.urlopen(f"http://127.0.0.1:{live_port}/health") as response:
                health = response.read().decode().strip()
            latencies = []
            with app.app_context():
                for job in jobs:
                    job = db.session.merge(job)
                    needle = f'"job": {job.id}, '.encode()
                    start = time.perf_counter()
                    tree.act(job, "start")  # commits; the hook publishes after the commit
                    committed = time.perf_counter() - start
                    latencies.append(committed + until_all_have(socks, needle))
            loaded_page = page_times(page)
            live_status = status_of(procs[0].pid)
            for sock in socks:
                sock.close()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=15)
            redis_server.stop()

    median = statistics.median(latencies) * 1000
    worst = max(latencies) * 1000
    print(f"{args.clients} streams open ({health}); {args.changes} changes committed")
    print(f"  change -> all {args.clients} streams: {median:.1f} ms median, {worst:.1f} ms max "
          f"(Redis pub/sub round trip alone: {floor_latency * 1000:.2f} ms)")  # fmt: skip
    print(f"  live process: {live_status['Threads']} thread(s), {live_status['VmRSS'].strip()}")
    print(f"  web page (gunicorn, 8 threads): {floor_page * 1000:.1f} ms median with no stream, "
          f"{loaded_page * 1000:.1f} ms with {args.clients} open")  # fmt: skip
    figures = [
        {"name": f"change to all {args.clients} open streams (median)", "value": round(median, 1),
         "unit": "ms", "floor": round(floor_latency * 1000, 2),
         "ratio": round(median / (floor_latency * 1000), 1), "target": 2000},
        {"name": f"change to all {args.clients} open streams (max)", "value": round(worst, 1),
         "unit": "ms", "floor": round(floor_latency * 1000, 2),
         "ratio": round(worst / (floor_latency * 1000), 1), "target": 2000},
        {"name": f"web page with {args.clients} streams open (median)",
         "value": round(loaded_page * 1000, 1), "unit": "ms",
         "floor": round(floor_page * 1000, 1), "ratio": round(loaded_page / floor_page, 2),
         "target": round(floor_page * 1000 * 1.5, 1)},
        {"name": f"threads of the stream process with {args.clients} streams",
         "value": int(live_status["Threads"]), "unit": "threads", "floor": 1,
         "ratio": int(live_status["Threads"]), "target": 8},
    ]  # fmt: skip
    out = ROOT / "bench" / "results" / "live.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"  written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
