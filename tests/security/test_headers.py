"""Headers and cookies on every answer: CSP, framing, nosniff, Referrer-Policy; HSTS and
Secure cookies only behind https; no server version."""

from __future__ import annotations

import pytest
from web.conftest import signup_with

from dispatcher import create_app

PAGES = ["/", "/login", "/signup", "/password/forgot", "/api/docs", "/api/openapi.json"]


@pytest.mark.parametrize("path", PAGES)
def test_every_answer_carries_the_security_headers(client, path):
    """Finding: no CSP, no frame-ancestors / X-Frame-Options, no nosniff, no Referrer-Policy."""
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # plain http here
    assert "Server" not in response.headers


def test_logged_in_pages_and_errors_carry_them_too(client, ann):
    for path in ("/goals", "/review", "/account", "/goals/424242"):
        response = client.get(path)
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_https_gets_hsts_and_secure_cookies(app, app_config):
    """Finding: the cookie never got Secure, even behind https. (`app` empties the tables.)"""
    app = create_app({**app_config, "public_base_url": "https://dispatcher.example"})
    with app.app_context():
        client = app.test_client()
        response = signup_with(client)
        assert response.status_code == 303
        cookies = response.headers.getlist("Set-Cookie")
        session = next(c for c in cookies if c.startswith("session="))
        assert "Secure" in session and "HttpOnly" in session
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        from dispatcher.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_plain_http_cookies_are_not_secure(client):
    response = signup_with(client)
    assert response.status_code == 303, response.get_data(as_text=True)[-2000:]
    session = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" not in session
