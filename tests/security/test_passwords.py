"""Passwords and sessions: strength, server-side log-out, new password ends sessions and
tokens, reset by mail (single use, expiring), sign-up that does not tell who has an account,
and a shorter cookie."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from web.conftest import PASSWORD, login_with, owner_by_email, page, signup_with

from dispatcher.auth_tokens import issue_token
from dispatcher.extensions import db
from dispatcher.models import Owner, PasswordReset
from dispatcher.models._base import utcnow
from dispatcher.security.passwords import common_passwords, password_problem

NEW = "tangerine kayak orbit"


@pytest.fixture
def app_config(app_config, smtp_port):
    return {**app_config, "smtp_port": smtp_port, "public_base_url": "http://dispatcher.test"}


# --- strength ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    ["12345678", "password", "aaaaaaaa", "abcdefgh", "87654321", "Password1", "qwerty123",
     "iloveyou", "abababab", "letmein!"],
)  # fmt: skip
def test_signup_refuses_weak_passwords(client, weak):
    """Finding: sign-up accepted 12345678, password and aaaaaaaa."""
    response = signup_with(client, password=weak)
    assert response.status_code == 400
    assert db.session.query(Owner).count() == 0
    assert re.search(r"common password|pattern anyone would guess", page(response))


def test_signup_refuses_the_email_as_password(client):
    response = signup_with(client, "kayak.orbit@example.com", password="kayak.orbit")
    assert response.status_code == 400 and "your email or name" in page(response)


def test_the_common_list_ships_with_the_package():
    listed = common_passwords()
    assert len(listed) > 3000
    assert {"password", "12345678", "qwerty123", "iloveyou"} <= listed
    assert password_problem("correct horse battery") is None


def test_password_change_refuses_weak_passwords(client, ann):
    response = client.post(
        "/account", data={"current": PASSWORD, "password": "password1", "confirm": "password1"}
    )
    assert response.status_code == 400 and "common password" in page(response)


# --- sessions ---------------------------------------------------------------------------------


def test_logout_ends_the_session_on_the_server(app, client, ann):
    """Finding: after log-out, the old session cookie still opened /goals."""
    assert client.get("/goals").status_code == 200
    stolen = client.get_cookie("session").value
    client.post("/logout")

    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/goals").status_code == 302
    assert thief.get("/api/v1/goals").status_code == 401


def test_password_change_ends_other_sessions_and_tokens(app, client, ann):
    """Finding: after a password change, another logged-in session stayed in."""
    laptop = app.test_client()
    assert login_with(laptop).status_code == 303
    token = issue_token(ann, "script").secret
    assert laptop.get("/goals").status_code == 200

    response = client.post("/account", data={"current": PASSWORD, "password": NEW, "confirm": NEW})
    assert response.status_code == 303

    assert client.get("/goals").status_code == 200  # the browser that changed it stays in
    assert laptop.get("/goals").status_code == 302
    api = app.test_client()
    assert api.get("/api/v1/goals", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login_with(app.test_client(), password=NEW).status_code == 303


def test_the_login_cookie_lasts_hours_not_a_month(client):
    """Finding: a stolen cookie worked for 31 days."""
    response = signup_with(client)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.application.permanent_session_lifetime <= timedelta(hours=12)
    assert "Expires=" in cookie


def test_an_expired_cookie_is_refused(app, client, ann):
    stolen = client.get_cookie("session").value
    app.permanent_session_lifetime = timedelta(seconds=-1)
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/goals").status_code == 302


# --- sign-up does not tell who has an account ---------------------------------------------------


def test_signup_with_a_taken_email_answers_like_a_new_one_and_mails_the_owner(
    app, client, ann, inbox
):
    """Finding: sign-up told whether an email is registered."""
    fresh = signup_with(app.test_client(), "newcomer@example.com", name="New")
    taken = signup_with(app.test_client(), "ANN@example.com", name="Imposter")
    assert (taken.status_code, taken.headers["Location"]) == (
        fresh.status_code,
        fresh.headers["Location"],
    )
    assert "exists" not in page(taken)
    mails = inbox.to("ann@example.com")
    assert len(mails) == 1 and "sign up" in mails[0]["Subject"]
    assert "http://dispatcher.test/password/forgot" in mails[0].get_content()
    assert owner_by_email("ann@example.com").name == "Ann"


# --- password reset ---------------------------------------------------------------------------


def _reset_link(inbox, email: str = "ann@example.com") -> str:
    body = inbox.to(email)[-1].get_content()
    return re.search(r"http://dispatcher\.test(/password/reset/\S+)", body).group(1)


def test_reset_by_mail_sets_a_new_password_once(app, client, ann, inbox):
    other = app.test_client()
    assert login_with(other).status_code == 303
    token = issue_token(ann, "script").secret
    stranger = app.test_client()
    asked = stranger.post("/password/forgot", data={"email": "Ann@Example.com"})
    unknown = stranger.post("/password/forgot", data={"email": "nobody@example.com"})
    assert asked.status_code == unknown.status_code == 303
    assert asked.headers["Location"] == unknown.headers["Location"]
    assert len(inbox.messages) == 1  # nobody@ has no account: no mail, same answer

    link = _reset_link(inbox)
    stored = db.session.scalars(select(PasswordReset)).one()
    assert link.rsplit("/", 1)[1] not in stored.token_hash  # only a hash is kept

    form = stranger.get(link)
    assert form.status_code == 200 and "Choose a new password" in page(form)
    done = stranger.post(link, data={"password": NEW, "confirm": NEW})
    assert done.status_code == 303 and done.headers["Location"].endswith("/today")
    assert stranger.get("/goals").status_code == 200

    assert other.get("/goals").status_code == 302  # every other session ended
    assert client.get("/goals").status_code == 302
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/goals", headers=bearer).status_code == 401
    assert login_with(app.test_client(), password=PASSWORD).status_code == 400
    assert login_with(app.test_client(), password=NEW).status_code == 303

    again = app.test_client().post(link, data={"password": "other kayak tune", "confirm": "x"})
    assert again.status_code == 303 and again.headers["Location"].endswith("/password/forgot")
    assert login_with(app.test_client(), password=NEW).status_code == 303


def test_reset_link_expires(app, ann, inbox):
    app.test_client().post("/password/forgot", data={"email": "ann@example.com"})
    link = _reset_link(inbox)
    db.session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    browser = app.test_client()
    assert browser.get(link).headers["Location"].endswith("/password/forgot")
    refused = browser.post(link, data={"password": NEW, "confirm": NEW})
    assert refused.status_code == 303
    assert login_with(app.test_client(), password=PASSWORD).status_code == 303


def test_reset_refuses_a_weak_password_and_keeps_the_link(app, ann, inbox):
    app.test_client().post("/password/forgot", data={"email": "ann@example.com"})
    link = _reset_link(inbox)
    browser = app.test_client()
    weak = browser.post(link, data={"password": "12345678", "confirm": "12345678"})
    assert weak.status_code == 400
    assert browser.post(link, data={"password": NEW, "confirm": NEW}).status_code == 303


def test_a_made_up_reset_link_goes_to_the_form(client):
    response = client.get("/password/reset/not-a-real-token")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/password/forgot")


def test_a_session_signed_before_versions_ends_at_the_first_log_out(app, client, ann):
    """Cookies from before this change hold only the owner id: they count as version 0."""
    old = app.test_client()
    with old.session_transaction() as session:
        session["_user_id"] = str(ann.id)
    assert old.get("/goals").status_code == 200
    client.post("/logout")
    assert old.get("/goals").status_code == 302
