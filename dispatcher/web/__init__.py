"""HTML pages: one blueprint per module."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Register every page blueprint."""
