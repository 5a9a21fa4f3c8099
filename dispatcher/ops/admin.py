"""The admin role's pages: the RQ dashboard (rq-dashboard) at /admin/rq.

Only owners with `is_admin` see it; anyone else logged in gets 404 (the page does not
exist for them), and a visitor not logged in is sent to the log-in page. The dashboard
reads the app's own Redis connection (REDIS_URL with TLS, a password or Sentinel, or the
embedded server) instead of opening one from a URL of its own.

CSP: the dashboard's pages carry one inline <script> (its settings and page code) and
compile their row templates with underscore's `_.template`, which builds functions from
strings; some elements have style="" attributes. So on /admin/rq only, the policy allows
that inline script by its SHA-256 hash (computed from the page sent, nothing else inline
runs), 'unsafe-eval' for the templates, and inline style attributes (not <style>
elements). Everything else (own origin only, no framing, no plugins) stays as on every page.

Actions (delete, requeue, empty) are POSTs the dashboard sends without our CSRF token:
they are refused (400). The dashboard is for looking; the reconciler re-drives work.
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, abort, current_app, request
from flask_login import current_user

from dispatcher.config import mask_password
from dispatcher.security.headers import csp

PREFIX = "/admin/rq"

#: an inline script: a <script> element without src whose type is absent or JavaScript
_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)(?:(?![^>]*\btype=)|[^>]*\btype=\"text/javascript\")[^>]*>(.*?)</script>",
    re.DOTALL | re.IGNORECASE,
)


def init_app(app: Flask) -> None:
    """Mount rq-dashboard at /admin/rq behind the admin guard and its own CSP."""
    from rq_dashboard.web import blueprint

    app.config["RQ_DASHBOARD_REDIS_URL"] = [mask_password(app.config["SETTINGS"].redis_url)]
    app.register_blueprint(blueprint, url_prefix=PREFIX)
    # Its own before_request opens a Redis connection from RQ_DASHBOARD_REDIS_URL: ours
    # replaces it (the guard first, then the app's connection).
    app.before_request_funcs[blueprint.name] = [_admins_only, _use_app_redis]
    app.after_request_funcs.setdefault(blueprint.name, []).append(_dashboard_csp)


def set_admin(email: str, admin: bool) -> bool:
    """Grant or revoke the admin role of the owner with `email` (any case); returns whether
    it changed. Raises LookupError when there is no such owner."""
    from sqlalchemy import func, select

    from dispatcher.extensions import db
    from dispatcher.models import Owner

    query = select(Owner).where(func.lower(Owner.email) == email.strip().lower())
    owner = db.session.scalars(query).one_or_none()
    if owner is None:
        raise LookupError(f"no owner with email {email!r}")
    changed = owner.is_admin != admin
    owner.is_admin = admin
    db.session.commit()
    return changed


def _admins_only() -> Response | None:
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not getattr(current_user, "is_admin", False):
        abort(404)
    if (request.view_args or {}).get("instance_number", 0) != 0:
        abort(404)  # one Redis: the app's
    return None


def _use_app_redis() -> None:
    from dispatcher.queues import redis_connection

    current_app.redis_conn = redis_connection()


def script_hashes(html: str) -> list[str]:
    """CSP sources for each inline script of a page, by the SHA-256 of its text."""
    hashes = []
    for body in _INLINE_SCRIPT.findall(html):
        digest = hashlib.sha256(body.encode()).digest()
        hashes.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return hashes


def dashboard_policy(hashes: list[str]) -> str:
    """The app's policy with the dashboard's needs added (see the module docstring)."""
    extra_script = " ".join([*hashes, "'unsafe-eval'"])
    policy = csp().replace("script-src 'self'", f"script-src 'self' {extra_script}")
    return policy.replace("style-src 'self'", "style-src 'self'; style-src-attr 'unsafe-inline'")


def _dashboard_csp(response: Response) -> Response:
    hashes = []
    if response.mimetype == "text/html" and not response.direct_passthrough:
        hashes = script_hashes(response.get_data(as_text=True))
    response.headers["Content-Security-Policy"] = dashboard_policy(hashes)
    response.headers["Cache-Control"] = "no-store"
    return response
