"""Response headers and cookie settings that every answer gets.

The CSP allows only this site's own files: no inline <script>, <style> or style=""; pages
keep their code in dispatcher/static. Framing is refused twice (frame-ancestors for current
browsers, X-Frame-Options for old ones), so the review page's "Accept and pay" button cannot
be laid under another site's clicks. HSTS and Secure cookies are only sent when the public
address is https: over plain http they would lock the browser out or drop the cookie.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Response


def csp(connect: str = "") -> str:
    """The policy; `connect` adds one origin pages may connect to (the live-update stream,
    served by its own process on its own port)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self'{' ' + connect if connect else ''}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


CSP = csp()
HSTS = "max-age=31536000; includeSubDomains"
#: how long a login lasts without logging in again (was Flask's default of 31 days)
SESSION_LIFETIME = timedelta(hours=12)
#: app.extensions key of the function that adds the headers to a response
EXTENSION = "dispatcher.security_headers"


def is_https(app: Flask) -> bool:
    return app.config["SETTINGS"].public_base_url.lower().startswith("https://")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def init_app(app: Flask) -> None:
    https = is_https(app)
    policy = csp(_origin(app.config["SETTINGS"].live_url))
    app.config.update(
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=https,
        REMEMBER_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True,
    )

    @app.after_request
    def _security_headers(response: Response) -> Response:
        """Also given to the answers the webhook fast path serves outside Flask's hooks."""
        headers = response.headers
        headers.setdefault("Content-Security-Policy", policy)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        if https:
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    app.extensions[EXTENSION] = _security_headers
