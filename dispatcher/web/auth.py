"""Owner accounts: sign up, log in, log out, and the account page.

Flask-Login keeps the owner's id in the signed session cookie; passwords are stored only as
hashes (Owner.set_password). Logging out is a POST so a link on another site cannot do it.
"""

from __future__ import annotations

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from dispatcher.extensions import db, login_manager
from dispatcher.forms import LoginForm, PasswordChangeForm, SignupForm
from dispatcher.models import Owner
from dispatcher.web.common import safe_next

bp = Blueprint("auth", __name__)

TAKEN = "an account with this email exists already: log in instead"
WRONG = "email or password is wrong"


def init_login(app: Flask) -> None:
    """Tell Flask-Login how to load an owner and where to send anonymous visitors."""
    login_manager.user_loader(load_owner)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    login_manager.login_message_category = "info"


def load_owner(user_id: str) -> Owner | None:
    try:
        return db.session.get(Owner, int(user_id))
    except (TypeError, ValueError):
        return None


def _by_email(email: str) -> Owner | None:
    return db.session.scalars(
        select(Owner).where(func.lower(Owner.email) == email.strip().lower())
    ).first()


@bp.get("/")
def home():
    if current_user.is_authenticated:
        return redirect(url_for("today.index"))
    return render_template("landing.html")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("goals.index"))
    form = SignupForm()
    if form.validate_on_submit():
        email = form.email.data.lower()
        if _by_email(email) is not None:
            form.email.errors.append(TAKEN)
        else:
            owner = Owner(email=email, name=form.name.data)
            owner.set_password(form.password.data)
            db.session.add(owner)
            try:
                db.session.commit()
            except IntegrityError:  # the same email signed up a moment ago
                db.session.rollback()
                form.email.errors.append(TAKEN)
            else:
                login_user(owner)
                flash(f"Welcome, {owner.name}! Start with a goal you can measure.", "success")
                return redirect(url_for("goals.index"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/signup.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("today.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        owner = _by_email(form.email.data)
        if owner is not None and owner.check_password(form.password.data):
            login_user(owner)
            return redirect(safe_next(form.next.data) or url_for("today.index"), code=303)
        form.form_errors.append(WRONG)
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
def logout():
    logout_user()
    flash("You are logged out.", "success")
    return redirect(url_for("auth.home"), code=303)


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if current_user.check_password(form.current.data):
            current_user.set_password(form.password.data)
            db.session.commit()
            flash("Password changed.", "success")
            return redirect(url_for("auth.account"), code=303)
        form.current.errors.append("that is not your current password")
    status = 400 if request.method == "POST" else 200
    return render_template("auth/account.html", form=form), status
