"""POST /webhooks/<adapter>: verify, store, acknowledge, then apply (DESIGN rule 4)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
