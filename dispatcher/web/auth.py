"""Owner accounts: sign up, log in, log out, password reset, and the account page.

Flask-Login keeps "<owner id>:<session version>" in the signed session cookie, and every
request checks the version against the owner's row (dispatcher.security.sessions): log-out and
a new password end sessions on the server, not only in the browser that asked. Passwords are
stored only as hashes. Logging out is a POST so a link on another site cannot do it.
"""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from dispatcher import auth_tokens
from dispatcher.extensions import db, login_manager
from dispatcher.forms import (
    ForgotForm,
    LoginForm,
    PasswordChangeForm,
    ResetForm,
    SignupForm,
    TokenForm,
)
from dispatcher.models import Owner
from dispatcher.security import limits, resets
from dispatcher.security.sessions import end_sessions, load_session_owner, replace_password
from dispatcher.web.common import safe_next

bp = Blueprint("auth", __name__)

WRONG = "email or password is wrong"
RESET_SENT = (
    "If an account has this email, a link to choose a new password is on its way. "
    "It works once, for an hour."
)
RESET_BROKEN = "This reset link has expired or was used already: ask for a new one."


def init_login(app: Flask) -> None:
    """Tell Flask-Login how to load an owner and where to send anonymous visitors."""
    login_manager.user_loader(load_owner)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    login_manager.login_message_category = "info"


def load_owner(user_id: str) -> Owner | None:
    return load_session_owner(user_id)


def start_session(owner: Owner) -> None:
    """Log `owner` in for this browser, with the cookie lifetime of the settings."""
    login_user(owner)
    session.permanent = True


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("today.index"))
    return render_template("landing.html")


@bp.route("/signup", methods=["GET", "POST"])
@limits.account_limited("signup")
def signup():
    """A taken email answers like a new one (303 to the goals) and mails its owner instead,
    so the form cannot be used to learn who has an account."""
    if current_user.is_authenticated:
        return redirect(url_for("goals.index"))
    form = SignupForm()
    if form.validate_on_submit():
        email = form.email.data.lower()
        existing = resets.owner_by_email(email)
        if existing is not None:
            resets.mail_signup_attempt(existing)
            return redirect(url_for("goals.index"), code=303)
        owner = Owner(email=email, name=form.name.data)
        owner.set_password(form.password.data)
        db.session.add(owner)
        try:
            db.session.commit()
        except IntegrityError:  # the same email signed up a moment ago
            db.session.rollback()
            return redirect(url_for("goals.index"), code=303)
        start_session(owner)
        flash(f"Welcome, {owner.name}! Start with a goal you can measure.", "success")
        return redirect(url_for("goals.index"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limits.account_limited("login")
def login():
    if current_user.is_authenticated:
        return redirect(url_for("today.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        owner = auth_tokens.check_login(form.email.data, form.password.data)
        if owner is not None:
            start_session(owner)
            target = safe_next(form.next.data) or url_for("today.index")
            return limits.trust_device(redirect(target, code=303), owner.email)
        form.form_errors.append(WRONG)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    """End the session on the server too: a copy of the cookie stops working."""
    if current_user.is_authenticated:
        end_sessions(current_user)
        db.session.commit()
    logout_user()
    flash("You are logged out.", "success")
    return redirect(url_for("auth.home"), code=303)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limits.account_limited("reset")
def forgot():
    form = ForgotForm()
    if form.validate_on_submit():
        resets.request_reset(form.email.data)
        flash(RESET_SENT, "info")
        return redirect(url_for("auth.login"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/forgot.html", form=form), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limits.account_limited("reset")
def reset(token: str):
    if resets.valid_reset(token) is None:
        flash(RESET_BROKEN, "error")
        return redirect(url_for("auth.forgot"), code=303)
    form = ResetForm()
    if form.validate_on_submit():
        owner = resets.complete_reset(token, form.password.data)
        if owner is None:
            flash(RESET_BROKEN, "error")
            return redirect(url_for("auth.forgot"), code=303)
        logout_user()
        start_session(owner)
        flash("Password changed; every other session and API token was ended.", "success")
        return redirect(url_for("today.index"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/reset.html", form=form, token=token), status


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if current_user.check_password(form.current.data):
            owner = current_user._get_current_object()
            replace_password(owner, form.password.data)
            start_session(owner)  # this browser stays in, with the new session version
            flash("Password changed; your other sessions and API tokens were ended.", "success")
            return redirect(url_for("auth.account"), code=303)
        form.current.errors.append("that is not your current password")
    status = 400 if request.method == "POST" else 200
    return _account_page(form, TokenForm(formdata=None)), status


def _account_page(form: PasswordChangeForm, token_form: TokenForm, secret: str | None = None):
    tokens = auth_tokens.list_tokens(int(current_user.id))
    return render_template(
        "auth/account.html", form=form, token_form=token_form, tokens=tokens, secret=secret
    )


@bp.post("/account/tokens")
@login_required
@limits.account_limited("token")
def create_token():
    """Make an API token; its secret is on this answer only (never stored, never shown again)."""
    token_form = TokenForm()
    if not token_form.validate_on_submit():
        return _account_page(PasswordChangeForm(formdata=None), token_form), 400
    issued = auth_tokens.issue_token(int(current_user.id), token_form.name.data)
    page = _account_page(PasswordChangeForm(formdata=None), TokenForm(formdata=None), issued.secret)
    return page, 201, {"Cache-Control": "no-store"}


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):
    token = auth_tokens.revoke_token(int(current_user.id), token_id)  # NotFound: 404
    flash(f"Token “{token.name}” revoked: it stops working at once.", "success")
    return redirect(url_for("auth.account"), code=303)
