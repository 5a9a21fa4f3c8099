"""/healthz (the process answers), /readyz (it can do its work), /metrics (Prometheus).

/metrics tells how busy each channel is, so it is not public: with METRICS_TOKEN set it
wants `Authorization: Bearer <token>`; without one it answers only loopback clients (a
scraper on the same host, or one that reaches it through a tunnel).
"""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, request

from dispatcher.http_errors import problem
from dispatcher.ops.checks import readiness

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """Up: the process serves requests. Nothing else is asked, so a slow database does not
    get a healthy web process restarted."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready: database and Redis reachable, migrations current; 503 names what is not."""
    checks = readiness(current_app._get_current_object())
    body = {c.name: {"ok": c.ok, "detail": c.detail} for c in checks}
    failed = [c for c in checks if not c.ok]
    if failed:
        reason = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        return problem(503, "Not ready", reason, checks=body)
    return {"status": "ready", "checks": body}


@bp.get("/metrics")
def metrics():
    if not _may_scrape():
        return problem(403, "Forbidden", "metrics need METRICS_TOKEN or a loopback client")
    from prometheus_client import CONTENT_TYPE_LATEST

    from dispatcher.ops.metrics import render

    return Response(render(current_app._get_current_object()), content_type=CONTENT_TYPE_LATEST)


def _may_scrape() -> bool:
    token = current_app.config["SETTINGS"].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False
