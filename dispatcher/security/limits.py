"""Throttling of the doors a guesser knocks on: log-in, sign-up, password reset, token creation.

Flask-Limiter counts in the app's Redis, so every web process shares the counts. Each door has
two limits, checked in this order:

1. per client address: a guesser from one address is stopped whatever account it tries;
2. per account (the email typed in), counting only failed attempts and only over a minute:
   a guesser spread over many addresses is slowed to a few tries a minute per account.

The account limit slows, it never locks: its window is short, and a browser that logged in to
the account before carries a signed device cookie that gives it its own account bucket, so
an attacker hammering an email cannot keep its owner out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from itsdangerous import BadSignature, URLSafeSerializer

from dispatcher.config import EMBEDDED_REDIS

#: (per address, per account) for each door; the account limit counts failures only
RATES: dict[str, tuple[str, str]] = {
    "login": ("10/minute;60/hour", "5/minute"),
    "token": ("10/minute;60/hour", "5/minute"),
    "signup": ("5/minute;30/hour", "3/minute"),
    "reset": ("5/minute;30/hour", "3/minute"),
}
#: doors where every attempt counts against the account (there is no "failure" to wait for)
COUNT_ALL = frozenset({"signup", "reset"})
DEVICE_COOKIE = "dsp_device"
DEVICE_DAYS = 365


def client_address() -> str:
    return request.remote_addr or "unknown"


limiter = Limiter(
    key_func=client_address,
    headers_enabled=True,
    strategy="moving-window",
    key_prefix="dispatcher-limits",
)


@limiter.request_filter
def _webhook() -> bool:
    """Webhooks are never throttled here, and skip the limiter's work: a platform sends them
    from a few shared addresses, in bursts, and a 429 makes it retry harder or switch the
    endpoint off. What guards them is the signature (401) and the body limit (413)."""
    return request.blueprint == "webhooks"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="trusted-device")


def _typed_account() -> str:
    """The account an attempt is about: the email typed in, or the reset link used."""
    email = request.form.get("email")
    if email is None:
        body = request.get_json(silent=True)
        email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or not email.strip():
        view_args = request.view_args or {}
        token = view_args.get("token")
        if token:
            return "reset:" + hashlib.sha256(str(token).encode()).hexdigest()[:16]
        return "address:" + client_address()  # no account named: the address limit is enough
    return email.strip().lower()[:254]


def account_key() -> str:
    """The account bucket: shared by everyone typing this email, except trusted devices."""
    account = _typed_account()
    try:
        trusted = _serializer().loads(request.cookies.get(DEVICE_COOKIE, ""))
    except BadSignature:
        trusted = None
    if isinstance(trusted, list) and len(trusted) == 2 and trusted[0] == account:
        return f"{account}|device:{trusted[1]}"
    return account


def trust_device(response: Response, email: str) -> Response:
    """Mark this browser as one that logged in to `email` (its own account bucket)."""
    value = _serializer().dumps([email.strip().lower(), secrets.token_urlsafe(12)])
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
    )
    return response


def _failed(response: Response) -> bool:
    return response.status_code in (400, 401, 403)


def _not_throttled(response: Response) -> bool:
    return response.status_code != 429


def account_limited(door: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a view with the two limits of `door` (POST only), address first."""
    per_address, per_account = RATES[door]
    by_address = limiter.shared_limit(
        per_address, scope=f"{door}-address", methods=["POST"], key_func=client_address
    )
    by_account = limiter.shared_limit(
        per_account,
        scope=f"{door}-account",
        methods=["POST"],
        key_func=account_key,
        deduct_when=_not_throttled if door in COUNT_ALL else _failed,
    )

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        return by_account(by_address(view))

    return decorate


def storage_uri(app: Flask) -> str:
    """The REDIS_URL the app uses, in the form Flask-Limiter's storage takes."""
    settings = app.config["SETTINGS"]
    url = settings.redis_url
    if url == EMBEDDED_REDIS:
        from dispatcher.queues import redis_connection, redis_url_for_children

        # The embedded server has no fixed address: start (or join) it now to learn it.
        url = redis_url_for_children(redis_connection(app), settings)
    if url.startswith("unix://"):
        return "redis+unix://" + url.removeprefix("unix://")
    return url


def init_app(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_uri(app))
    app.config.setdefault("RATELIMIT_ENABLED", not app.config["SETTINGS"].extra.get("no_limits"))
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded):
        from dispatcher.http_errors import render_error

        return render_error(
            429,
            "Too many attempts",
            "Too many attempts from here or for this account: wait a minute and try again.",
        )
