"""Password reset by mail: a random link, single use, valid for an hour, stored as a hash.

Asking for a reset answers the same whether the email has an account: only the owner's inbox
learns that it does. The mails themselves go through dispatcher.mail.send_mail.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from datetime import timedelta

from flask import current_app, render_template
from sqlalchemy import func, select, update

from dispatcher.extensions import db
from dispatcher.mail import send_mail
from dispatcher.models import Owner, PasswordReset
from dispatcher.models._base import utcnow
from dispatcher.security.sessions import replace_password

log = logging.getLogger(__name__)

RESET_VALID_FOR = timedelta(hours=1)
RESET_PATH = "/password/reset/"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def owner_by_email(email: str) -> Owner | None:
    return db.session.scalars(
        select(Owner).where(func.lower(Owner.email) == (email or "").strip().lower())
    ).first()


def _base_url() -> str:
    return current_app.config["SETTINGS"].public_base_url.rstrip("/")


def _mail(to: str, template: str, **context: object) -> None:
    """Send one account mail; a mail server that is down is logged, never shown (the answer
    must not depend on whether a mail was due)."""
    text = render_template(template, base_url=_base_url(), **context)
    subject, _, body = text.partition("\n\n")
    try:
        send_mail(to, subject.strip(), body)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("account mail %s to owner not sent: %s", template, exc)


def issue_reset(owner: Owner) -> str:
    """Make a reset link secret for `owner` and commit; only its hash is stored."""
    secret = secrets.token_urlsafe(32)
    db.session.add(
        PasswordReset(
            owner_id=owner.id, token_hash=_digest(secret), expires_at=utcnow() + RESET_VALID_FOR
        )
    )
    db.session.commit()
    return secret


def request_reset(email: str) -> None:
    """Mail a reset link if `email` has an account; do nothing visible otherwise."""
    owner = owner_by_email(email)
    if owner is None:
        return
    secret = issue_reset(owner)
    _mail(
        owner.email,
        "auth/mail_reset.txt",
        owner=owner,
        link=_base_url() + RESET_PATH + secret,
        hours=int(RESET_VALID_FOR.total_seconds() // 3600),
    )


def mail_signup_attempt(owner: Owner) -> None:
    """Someone signed up with an email that has an account: tell its owner, not the visitor."""
    _mail(owner.email, "auth/mail_signup_exists.txt", owner=owner)


def valid_reset(secret: str) -> PasswordReset | None:
    """The unused, unexpired reset this secret opens, or None."""
    if not secret or len(secret) > 100:
        return None
    reset = db.session.scalars(
        select(PasswordReset).where(PasswordReset.token_hash == _digest(secret))
    ).first()
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        return None
    return reset


def complete_reset(secret: str, password: str) -> Owner | None:
    """Set the new password through a reset link and use the link up (with every other
    outstanding link of the owner); None if the link is not valid. Commits."""
    reset = valid_reset(secret)
    if reset is None:
        return None
    now = utcnow()
    unused = PasswordReset.used_at.is_(None)
    claimed = db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, unused)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # another request used it a moment ago
        db.session.rollback()
        return None
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.owner_id == reset.owner_id, unused)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    owner = reset.owner
    replace_password(owner, password)
    return owner
