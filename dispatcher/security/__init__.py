"""Web security that every blueprint shares: URL converters, headers, throttling, sessions."""

from __future__ import annotations

from flask import Flask


def init_url_map(app: Flask) -> None:
    """Install the bounded id converter; call before any blueprint adds its rules."""
    from dispatcher.security.converters import IdConverter

    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    """Throttling, response headers and cookie settings (after the blueprints)."""
    from dispatcher.security import headers, limits

    limits.init_app(app)
    headers.init_app(app)
