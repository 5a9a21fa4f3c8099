"""The `dispatcher` command: up, web, worker, sandbox, demo, and db (Flask-Migrate)."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup


def _create_app():
    from dispatcher import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Dispatcher: delegate micro-jobs and review what comes back."""
