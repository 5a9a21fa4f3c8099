"""Who is calling: a personal token (`Authorization: Bearer dsp_...`), or, for reads only,
the web session of a logged-in owner.

Unsafe methods never take the session cookie: the API blueprints are exempt from CSRF, so a
cookie must not be able to change anything on its own.
"""

from __future__ import annotations

from flask import Response, g, request
from flask_smorest import Blueprint

from dispatcher.auth_tokens import verify_token
from dispatcher.http_errors import problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = 'Bearer realm="dispatcher"'
#: how API calls appear in a job's timeline (Event.actor)
ACTOR = "owner (api)"
HOW = "send Authorization: Bearer <token>; make one with POST /api/v1/tokens"


def unauthorized(detail: str, *, invalid: bool = False) -> Response:
    response = problem(401, "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = REALM + (', error="invalid_token"' if invalid else "")
    return response


def session_owner_id() -> int | None:
    """The owner logged in to the web pages, if the app has a login loader and someone is."""
    from flask_login import current_user

    from dispatcher.extensions import login_manager

    # Without a user loader Flask-Login cannot read the session (it raises): no session auth.
    if login_manager._user_callback is None and login_manager._request_callback is None:
        return None
    if current_user and current_user.is_authenticated:
        return int(current_user.id)
    return None


def identify(*, allow_session: bool) -> tuple[int | None, Response | None]:
    """(owner id, None) for a good caller, (None, 401 answer) otherwise.

    A request that sends an Authorization header is judged on it alone.
    """
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None, unauthorized("malformed Authorization header: " + HOW, invalid=True)
        owner = verify_token(secret.strip())
        if owner is None:
            return None, unauthorized("the token is unknown or revoked", invalid=True)
        g.api_auth = "token"
        return owner.id, None
    if allow_session:
        owner_id = session_owner_id()
        if owner_id is not None:
            g.api_auth = "session"
            return owner_id, None
    return None, unauthorized("authentication required: " + HOW)


def _require_owner() -> Response | None:
    if request.method == "OPTIONS":
        return None
    owner_id, refusal = identify(allow_session=request.method in SAFE_METHODS)
    if refusal is not None:
        return refusal
    g.api_owner_id = owner_id
    return None


def protect(blp: Blueprint, *, except_methods: frozenset[str] = frozenset()) -> None:
    """Require an authenticated owner on every view of `blp` (but `except_methods`)."""

    @blp.before_request
    def _check() -> Response | None:
        if request.method in except_methods:
            return None
        return _require_owner()


def owner_id() -> int:
    """The calling owner's id (set by `protect`)."""
    return g.api_owner_id
