"""The `dispatcher` command: up, web, worker, scheduler, sandbox, live, demo, db (Flask-Migrate)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext


def _create_app():
    from dispatcher import create_app

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
    port = port or _settings().web_port
    os.execv(
        sys.executable,
        [
            sys.executable, "-m", "gunicorn",
            "--workers", str(workers), "--threads", "4",
            "--bind", f"{host}:{port}",
            "--access-logfile", "-",
            "--graceful-timeout", "5",
            "dispatcher:create_app()",
        ],
    )  # fmt: skip


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
    """Enqueue the periodic jobs (dispatcher/periodic.py) on time."""
    from dispatcher.worker import run_scheduler

    run_scheduler(current_app._get_current_object())


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=None, help="default: settings.sandbox_port")
@with_appcontext
def sandbox(host: str, port: int | None) -> None:
    """Run the sandbox marketplace (a simulated platform) on its own port."""
    from dispatcher.sandbox.server import run_sandbox

    settings = _settings()
    run_sandbox(
        host,
        port or settings.sandbox_port,
        str(settings.instance_path / "sandbox.db"),
        settings.sandbox_webhook_secret,
        {},
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
def demo() -> None:
    """Seed a demo owner with a guest-post campaign (idempotent)."""
    from dispatcher.demo import DEMO_EMAIL, DEMO_PASSWORD, seed_demo

    created = seed_demo()
    click.echo(f"demo owner {DEMO_EMAIL} / {DEMO_PASSWORD} ({'created' if created else 'exists'})")


@main.command()
@click.option("--port", type=int, default=None)
@with_appcontext
def up(port: int | None) -> None:
    """Run the whole product: embedded Redis, migrations, web, workers, scheduler, sandbox."""
    from flask_migrate import upgrade

    from dispatcher.config import EMBEDDED_REDIS
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
    redis_note = "embedded" if settings.redis_url == EMBEDDED_REDIS else settings.redis_url
    click.echo(
        f"\nDispatcher is up: http://127.0.0.1:{port}\n"
        f"  demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  sandbox marketplace: http://127.0.0.1:{settings.sandbox_port}\n"
        f"  live updates: {env['LIVE_URL']}\n"
        f"  redis: {redis_note}; database: {settings.database_url}\n"
        "  Ctrl-C stops everything.\n"
    )
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
