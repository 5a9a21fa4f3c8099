"""The `dispatcher` command: up, web, worker, scheduler, sandbox, live, demo, db (Flask-Migrate)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext


def _create_app():
    from dispatcher import create_app
    from dispatcher.config import default_instance
    from dispatcher.ops import prepare_process

    prepare_process(default_instance())  # before anything imports prometheus-client
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Dispatcher: delegate micro-jobs and review what comes back."""


def _settings():
    return current_app.config["SETTINGS"]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: settings.web_port (PORT)")
@click.option("--workers", type=int, default=2, show_default=True)
@with_appcontext
def web(host: str, port: int | None, workers: int) -> None:
    """Serve the web app with gunicorn."""
    settings = _settings()
    port = port or settings.web_port
    os.execv(
        sys.executable,
        [
            sys.executable, "-m", "gunicorn",
            "--workers", str(workers), "--threads", "4",
            "--bind", f"{host}:{port}",
            "--access-logfile", "-",
            "--graceful-timeout", "5",
            "--control-socket", control_socket(settings.instance_path, port),
            "--config", "python:dispatcher.ops.gunicorn_conf",
            "dispatcher:create_app()",
        ],
    )  # fmt: skip


def control_socket(instance_path: Path, port: int) -> str:
    """gunicorn's control socket, one per instance and port (its default is one per user, so
    two `dispatcher web` on one host took each other's). Unix socket paths are short: a long
    instance path gets a hashed name under the temp folder instead."""
    path = instance_path / f"gunicorn-{port}.ctl"
    if len(str(path)) < 100:
        return str(path)
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"dispatcher-{digest}.ctl")


@main.command()
@click.option("--queue", "queue_names", multiple=True, help="repeat; default: all queues")
@click.option("--burst", is_flag=True, help="stop when the queues are empty")
@with_appcontext
def worker(queue_names: tuple[str, ...], burst: bool) -> None:
    """Run a non-forking RQ worker (with RQ's scheduler for delayed retries)."""
    from dispatcher.queues import ALL_QUEUES
    from dispatcher.worker import run_worker

    run_worker(current_app._get_current_object(), queue_names or ALL_QUEUES, burst=burst)


@main.command()
@with_appcontext
def scheduler() -> None:
    """Enqueue the periodic jobs on time (one scheduler at a time holds the lease)."""
    from dispatcher.scheduler import run_scheduler

    run_scheduler(current_app._get_current_object())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: settings.sandbox_port")
@click.option("--polling-only", is_flag=True, help="send no webhooks: clients must poll for events")
@with_appcontext
def sandbox(host: str, port: int | None, polling_only: bool) -> None:
    """Run the sandbox marketplace (a simulated platform) on its own port."""
    from dispatcher.sandbox.server import run_sandbox

    settings = _settings()
    run_sandbox(
        host,
        port or settings.sandbox_port,
        str(settings.instance_path / "sandbox.db"),
        {"send_webhooks": False} if polling_only else {},
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: settings.live_port (LIVE_PORT)")
@with_appcontext
def live(host: str, port: int | None) -> None:
    """Stream live updates to the owners' open pages (server-sent events, asyncio)."""
    from urllib.parse import urlsplit

    from dispatcher.live.server import run
    from dispatcher.queues import connect, redis_url_for_children

    settings = _settings()
    base = urlsplit(settings.public_base_url)
    run(
        host,
        port or settings.live_port,
        redis_url=redis_url_for_children(connect(settings), settings),
        secret_key=settings.secret_key,
        allow_origin=f"{base.scheme}://{base.netloc}",
    )


@main.command()
@with_appcontext
def rekey() -> None:
    """Re-encrypt every connection's secrets under the first DISPATCHER_ENCRYPTION_KEY."""
    from dispatcher import connections

    click.echo(f"re-encrypted {connections.rekey_all()} connection(s) under the first key")


@main.command()
@with_appcontext
def demo() -> None:
    """Seed a demo owner with a guest-post campaign (idempotent)."""
    from dispatcher.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo

    created = seed_demo()
    click.echo(f"demo owner {DEMO_EMAIL} / {DEMO_PASSWORD} ({'created' if created else 'exists'})")


@main.command()
@click.option("--alive", is_flag=True, help="only: is a worker or scheduler of this host alive")
@click.option(
    "--connections/--no-connections", default=True, show_default=True,
    help="run each connection's test call (reported; see --connections-required)",
)  # fmt: skip
@click.option(
    "--connections-required", is_flag=True,
    help="exit 1 also when a connection's test call fails",
)  # fmt: skip
@click.option("--connection-timeout", type=float, default=5.0, show_default=True,
              help="seconds to connect and to read, per connection")  # fmt: skip
@with_appcontext
def check(
    alive: bool, connections: bool, connections_required: bool, connection_timeout: float
) -> None:
    """Check settings, database, Redis, migrations and each connection; exit 1 if a required
    check fails (a connection's test call only with --connections-required)."""
    from dispatcher.ops.checks import check_alive_here, everything

    app = current_app._get_current_object()
    checks = [check_alive_here(app)] if alive else everything(app)
    _table(
        ["check", "ok", "detail"], [[c.name, "ok" if c.ok else "FAIL", c.detail] for c in checks]
    )
    failed = not all(c.ok for c in checks)
    schema_ok = {c.name for c in checks if c.ok} >= {"database", "migrations"}
    if connections and not alive and schema_ok:
        from dispatcher.ops.connection_checks import check_connections

        rows = check_connections(connection_timeout)
        click.echo()
        _table(
            ["owner", "connection", "adapter", "ok", "detail"],
            [[r.owner, r.label, r.adapter, r.status, r.detail] for r in rows]
            or [["(no connections)", "", "", "", ""]],
        )
        if connections_required and any(r.failed for r in rows):
            failed = True
    if failed:
        sys.exit(1)


@main.command()
@with_appcontext
def stats() -> None:
    """Queue depths, the oldest waiting job, and open dispatches per channel."""
    from redis.exceptions import RedisError

    from dispatcher.ops.stats import open_dispatches, queue_depths

    try:
        depths = queue_depths()
    except RedisError as exc:
        raise click.ClickException(f"Redis is unreachable: {exc}") from exc
    _table(
        ["queue", "queued", "running", "scheduled", "failed", "oldest (s)"],
        [[q.name, q.queued, q.running, q.scheduled, q.failed, f"{q.oldest_seconds:.0f}"]
         for q in depths],
    )  # fmt: skip
    click.echo()
    open_ = open_dispatches()
    _table(
        ["channel", "pending", "placed"],
        [[name, c.get("pending", 0), c.get("placed", 0)] for name, c in sorted(open_.items())]
        or [["(none)", 0, 0]],
    )


@main.group()
def admin() -> None:
    """Grant or revoke the admin role (the RQ dashboard at /admin/rq)."""


@admin.command("grant")
@click.argument("email")
@with_appcontext
def admin_grant(email: str) -> None:
    """Make the owner with EMAIL an admin."""
    _set_admin(email, True)


@admin.command("revoke")
@click.argument("email")
@with_appcontext
def admin_revoke(email: str) -> None:
    """Take the admin role from the owner with EMAIL."""
    _set_admin(email, False)


def _set_admin(email: str, value: bool) -> None:
    from dispatcher.ops.admin import set_admin

    try:
        changed = set_admin(email, value)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    role = "an admin" if value else "not an admin"
    click.echo(f"{email} is {role}{'' if changed else ' (unchanged)'}")


@main.command()
def machines() -> None:
    """Print every state machine's transition table as Markdown (docs/state-machines.md)."""
    from dispatcher.ops.machines_doc import render_markdown

    click.echo(render_markdown(), nl=False)


def _table(header: list[str], rows: list[list]) -> None:
    cells = [header, *[[str(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


@main.command()
@click.option("--port", type=int, default=None)
@with_appcontext
def up(port: int | None) -> None:
    """Run the whole product: embedded Redis, migrations, web, workers, scheduler, sandbox."""
    from flask_migrate import upgrade

    from dispatcher.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo
    from dispatcher.queues import ALL_QUEUES, connect, redis_url_for_children

    settings = _settings()
    port = port or settings.web_port
    redis_owner = connect(settings)  # this process owns the embedded server while it runs
    redis_owner.ping()
    env = {
        **os.environ,
        "DISPATCHER_INSTANCE": str(settings.instance_path),
        "REDIS_URL": redis_url_for_children(redis_owner, settings),
        "DATABASE_URL": settings.database_url,
        "SANDBOX_URL": f"http://127.0.0.1:{settings.sandbox_port}",
        "PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}"),
        "LIVE_URL": os.environ.get("LIVE_URL", f"http://127.0.0.1:{settings.live_port}"),
        "PYTHONUNBUFFERED": "1",
    }
    _clear_metrics()  # counters start from zero with the processes that write them
    click.echo("migrating the database...")
    upgrade()
    seed_demo()
    exe = [sys.executable, "-m", "dispatcher.cli"]
    commands = {
        "sandbox": [*exe, "sandbox"],
        "web": [*exe, "web", "--port", str(port)],
        **{f"worker-{q}": [*exe, "worker", "--queue", q] for q in ALL_QUEUES},
        "scheduler": [*exe, "scheduler"],
        "live": [*exe, "live"],
    }
    children: dict[str, subprocess.Popen] = {}
    for name, cmd in commands.items():
        children[name] = subprocess.Popen(cmd, env=env)
    click.echo(up_banner(settings, port, DEMO_EMAIL, DEMO_PASSWORD, live_url=env["LIVE_URL"]))
    stopping = False

    def _stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    exit_code = 0
    while not stopping:
        for name, proc in children.items():
            if proc.poll() is not None:
                click.echo(f"{name} exited with {proc.returncode}; stopping everything", err=True)
                stopping, exit_code = True, 1
                break
        time.sleep(0.5)
    _terminate(children)
    redis_owner.shutdown(nosave=False) if hasattr(redis_owner, "socket_file") else None
    sys.exit(exit_code)


def up_banner(
    settings, port: int, demo_email: str, demo_password: str, *, live_url: str = ""
) -> str:
    """What `up` prints once everything started; every URL with its password masked."""
    from dispatcher.config import EMBEDDED_REDIS, mask_password

    redis_note = "embedded" if settings.redis_url == EMBEDDED_REDIS else settings.redis_url
    return (
        f"\nDispatcher is up: http://127.0.0.1:{port}\n"
        f"  demo login: {demo_email} / {demo_password}\n"
        f"  sandbox marketplace: http://127.0.0.1:{settings.sandbox_port}\n"
        + (f"  live updates: {live_url}\n" if live_url else "")
        + f"  redis: {mask_password(redis_note)}; "
        f"database: {mask_password(settings.database_url)}\n"
        "  Ctrl-C stops everything.\n"
    )


def _clear_metrics() -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)


def _terminate(children: dict[str, subprocess.Popen]) -> None:
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name, proc in children.items():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            click.echo(f"{name} did not stop in time; killing it", err=True)
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
