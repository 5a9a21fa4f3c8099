"""JSON API under /api/v1 (flask-smorest + marshmallow)."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def init_api(app: Flask, api: Api) -> None:
    """Register the API blueprints (filled in by the API module)."""
