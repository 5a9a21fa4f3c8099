"""HTML pages: one blueprint per module."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register every page blueprint."""
    from dispatcher.web import results, today

    app.register_blueprint(today.bp)
    app.register_blueprint(results.bp)
