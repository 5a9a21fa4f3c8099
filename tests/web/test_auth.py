"""Accounts over HTTP: sign up, log in, log out, the account page, and CSRF."""

from __future__ import annotations

import re

import pytest

from dispatcher import create_app
from dispatcher.extensions import db
from dispatcher.models import Owner

from .conftest import PASSWORD, FreshContextClient, login_with, owner_by_email, page, signup_with


def test_landing_page_for_visitors(client):
    response = client.get("/")
    assert response.status_code == 200
    assert 'href="/signup"' in page(response) and 'href="/login"' in page(response)


def test_signup_logs_in_and_lands_on_goals(client, signup):
    response = signup(email="Ann@Example.com ", name="Ann")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/goals")

    goals = client.get("/goals")
    assert goals.status_code == 200
    assert "Your goals" in page(goals) and "Ann" in page(goals)
    for link in ('href="/today"', 'href="/review"', 'href="/status"'):  # the main nav
        assert link in page(goals)
    assert client.get("/").headers["Location"].endswith("/today")

    owner = owner_by_email("ann@example.com")  # stored trimmed and lower-case
    assert owner.name == "Ann"
    assert PASSWORD not in owner.password_hash and owner.check_password(PASSWORD)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "short", "confirm": "short"}, "use at least 8 characters"),
        ({"confirm": "something else"}, "the two passwords differ"),
        ({"email": "not-an-email"}, "does not look like an email address"),
        ({"name": "   "}, "give your name"),
    ],
)
def test_signup_errors_keep_what_was_typed(client, fields, message):
    data = {"email": "ann@example.com", "name": "Ann Lee", "password": PASSWORD}
    data |= fields
    response = signup_with(client, **data)

    assert response.status_code == 400
    html = page(response)
    assert message in html
    assert f'value="{data["email"]}"' in html
    assert PASSWORD not in html  # passwords are never echoed back
    assert db.session.query(Owner).count() == 0


def test_signup_with_a_taken_email(client, ann, app):
    other = app.test_client()
    response = signup_with(other, "ANN@example.com", name="Imposter")
    # The same answer as a new account (tests/security/test_passwords.py), nobody logged in.
    assert response.status_code == 303 and response.headers["Location"].endswith("/goals")
    assert other.get("/goals").status_code == 302
    assert db.session.query(Owner).count() == 1


def test_login_and_logout(app, ann):
    browser = app.test_client()
    assert browser.get("/goals").status_code == 302

    response = login_with(browser, "ann@example.com", PASSWORD)
    assert response.status_code == 303 and response.headers["Location"].endswith("/today")
    assert browser.get("/goals").status_code == 200

    assert browser.get("/logout").status_code == 405  # a link cannot log anyone out
    response = browser.post("/logout", follow_redirects=True)
    assert "You are logged out." in page(response)
    assert browser.get("/goals").status_code == 302


def test_bad_password_is_refused_with_the_email_kept(app, ann):
    browser = app.test_client()
    response = login_with(browser, "ann@example.com", "wrong password")
    assert response.status_code == 400
    assert "email or password is wrong" in page(response)
    assert 'value="ann@example.com"' in page(response)
    assert browser.get("/goals").status_code == 302

    unknown = login_with(browser, "nobody@example.com", PASSWORD)
    assert unknown.status_code == 400 and "email or password is wrong" in page(unknown)


def test_pages_need_a_login_and_come_back_after_it(app, ann, goal):
    browser = app.test_client()
    response = browser.get(f"/goals/{goal.id}")
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]

    form = browser.get(response.headers["Location"])
    assert f'value="/goals/{goal.id}"' in page(form)
    done = browser.post(
        "/login",
        data={"email": "ann@example.com", "password": PASSWORD, "next": f"/goals/{goal.id}"},
    )
    assert done.headers["Location"].endswith(f"/goals/{goal.id}")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_login_never_redirects_off_site(app, ann, target):
    browser = app.test_client()
    done = browser.post(
        "/login", data={"email": "ann@example.com", "password": PASSWORD, "next": target}
    )
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/today")


def test_change_password(client, ann):
    wrong = client.post(
        "/account",
        data={"current": "nope", "password": "new password!", "confirm": "new password!"},
    )
    assert wrong.status_code == 400 and "not your current password" in page(wrong)

    ok = client.post(
        "/account",
        data={"current": PASSWORD, "password": "new password!", "confirm": "new password!"},
    )
    assert ok.status_code == 303
    db.session.expire_all()
    assert owner_by_email("ann@example.com").check_password("new password!")


def test_nav_shows_the_sections(client, ann):
    html = page(client.get("/goals"))
    for link in ('href="/goals"', 'href="/review"', 'href="/account"', 'action="/logout"'):
        assert link in html
    assert re.search(r'id="review-count">0<', html)


def test_forms_without_the_csrf_token_are_refused(app_config, redis_server):
    """With CSRF on (the default outside these tests) a POST without the token is a 400."""
    app = create_app({**app_config, "extra": {}})
    app.test_client_class = FreshContextClient
    with app.app_context():
        browser = app.test_client()
        form = browser.get("/signup")
        assert 'name="csrf_token"' in page(form)

        refused = signup_with(browser)
        assert refused.status_code == 400
        assert db.session.query(Owner).count() == 0

        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page(form)).group(1)
        accepted = browser.post(
            "/signup",
            data={
                "csrf_token": token,
                "email": "ann@example.com",
                "name": "Ann",
                "password": PASSWORD,
                "confirm": PASSWORD,
            },
        )
        assert accepted.status_code == 303
        logout = browser.post("/logout")
        assert logout.status_code == 400  # logging out is a form too
        db.session.query(Owner).delete()
        db.session.commit()
        db.session.remove()
        db.engine.dispose()  # this extra app's pool: closed now, not when GC finds it
