"""The daily digest: the Today page as an email, sent once a day at the owner's chosen hour.

Once a day, and only once: before sending, the run *claims* the day by committing an Event
(kind "digest_sent", data {"date": "YYYY-MM-DD"}), and only the run whose claim committed
sends. Two runs that overlap (two schedulers, a slow SMTP server, a retried job) are
serialised by a no-op UPDATE of the owner's row taken before the check, which holds a row lock
on PostgreSQL and the write lock on SQLite until the claim commits; the second run then sees
the first one's Event and skips. The trade-off is at-most-once: if the process dies between
the claim and the send, that day's digest is lost; if the SMTP server refuses or is down, the
claim is withdrawn so the next run within the hour tries again.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Sequence
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from flask import current_app, render_template
from sqlalchemy import delete, select, update

from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.models import Event, Owner
from dispatcher.models._base import utcnow
from dispatcher.notifications.digest import claim_for_digest, release_digest
from dispatcher.notifications.kinds import Notice
from dispatcher.notifications.render import grouped, summary
from dispatcher.today import local_now, overdue_reason, today_view

log = logging.getLogger(__name__)

DIGEST_KIND = "digest_sent"
SMTP_TIMEOUT = 10.0


class MailError(DispatcherError):
    """One or more digests could not be handed to the SMTP server."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def compose_digest(
    owner: Owner, today: date, notices: Sequence[Notice] = ()
) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of `owner`'s digest for their local day `today`, with the
    notifications it carries (dispatcher/notifications/digest.py)."""
    view = today_view(owner, today)
    counts = [
        _plural(len(view.planned), "job") + " today",
        f"{len(view.overdue)} overdue" if view.overdue else "",
        f"{len(view.review)} to review" if view.review else "",
        f"{len(view.out)} out with others" if view.out else "",
        summary(notices),
    ]
    subject = f"Today, {today:%a %d %b}: " + ", ".join(c for c in counts if c)
    base = current_app.config["SETTINGS"].public_base_url.rstrip("/")
    context = {
        "owner": owner,
        "view": view,
        "today": today,
        "today_url": f"{base}/today",
        "base_url": base,
        "overdue_reason": overdue_reason,
        "notice_groups": grouped(notices),
    }
    text = render_template("today/digest.txt", **context)
    html = render_template("today/digest_email.html", **context)
    return subject, text, html


def send_mail(to: str, subject: str, text: str, html: str | None = None) -> None:
    """Hand one message to the configured SMTP server; raises OSError / SMTPException."""
    settings = current_app.config["SETTINGS"]
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT) as smtp:
        smtp.send_message(message)


class MailNotSent(DispatcherError):
    """The server never took the message (refused or unreachable before DATA was accepted);
    `temporary` when trying again later may work (a 4xx, a connection refused)."""

    def __init__(self, message: str, *, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


class MailOutcomeUnknown(DispatcherError):
    """The connection broke while the message was being handed over: the server may have
    queued it. Never resent blindly."""


def send_message(message: EmailMessage, url: str, *, timeout: float = SMTP_TIMEOUT) -> None:
    """Hand `message` to the SMTP server at `url` (smtp://[user:pass@]host[:port], smtps://
    for TLS, ``?starttls=1`` to upgrade), step by step, so the caller knows whether it may
    have been delivered: MailNotSent before the DATA phase, MailOutcomeUnknown during it."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise MailNotSent(f"not an SMTP URL: {parts.scheme}://{parts.hostname}", temporary=False)
    cls = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    port = parts.port or (465 if parts.scheme == "smtps" else 25)
    sender = message["From"]
    recipients = [a.strip() for a in str(message["To"]).split(",") if a.strip()]
    try:
        smtp = cls(parts.hostname, port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailNotSent(f"SMTP server unreachable: {exc}", temporary=True) from exc
    try:
        try:
            smtp.ehlo_or_helo_if_needed()
            if "starttls=1" in parts.query:
                smtp.starttls()
                smtp.ehlo()
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            code, reply = smtp.mail(sender)
            if code != 250:
                raise MailNotSent(f"sender refused: {code} {reply!r}", temporary=code < 500)
            for rcpt in recipients:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    smtp.rset()
                    raise MailNotSent(f"{rcpt} refused: {code} {reply!r}", temporary=code < 500)
        except smtplib.SMTPResponseException as exc:
            raise MailNotSent(f"SMTP refused: {exc.smtp_code} {exc.smtp_error!r}",
                              temporary=exc.smtp_code < 500) from exc  # fmt: skip
        except (OSError, smtplib.SMTPException) as exc:
            raise MailNotSent(f"SMTP conversation failed: {exc}", temporary=True) from exc
        try:
            code, reply = smtp.data(message.as_bytes())
        except smtplib.SMTPDataError as exc:
            raise MailNotSent(f"message refused: {exc.smtp_code} {exc.smtp_error!r}",
                              temporary=exc.smtp_code < 500) from exc  # fmt: skip
        except (OSError, smtplib.SMTPException) as exc:
            raise MailOutcomeUnknown(f"connection lost while sending: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()


def _sent_on(owner_id: int, day: date):
    return select(Event.id).where(
        Event.owner_id == owner_id,
        Event.kind == DIGEST_KIND,
        Event.data["date"].as_string() == day.isoformat(),
    )


def digest_sent(owner_id: int, day: date) -> bool:
    return db.session.scalar(_sent_on(owner_id, day).limit(1)) is not None


def claim_digest(owner_id: int, day: date, *, actor: str = "scheduler") -> bool:
    """Record that `day`'s digest is being sent; False if another run already did."""
    db.session.commit()  # start a fresh transaction: the lock below must be the first write
    db.session.execute(
        update(Owner)
        .where(Owner.id == owner_id)
        .values(digest_hour=Owner.digest_hour)
        .execution_options(synchronize_session=False)
    )
    if digest_sent(owner_id, day):
        db.session.rollback()
        return False
    db.session.add(
        Event(owner_id=owner_id, kind=DIGEST_KIND, actor=actor, data={"date": day.isoformat()})
    )
    db.session.commit()
    return True


def _withdraw_claim(owner_id: int, day: date) -> None:
    db.session.rollback()
    db.session.execute(delete(Event).where(Event.id.in_(_sent_on(owner_id, day))))
    db.session.commit()


def send_digest(owner: Owner, day: date, *, actor: str = "scheduler") -> bool:
    """Send `owner`'s digest for `day` unless it was already sent; True if this call sent it."""
    if not claim_digest(owner.id, day, actor=actor):
        return False
    notices: list[Notice] = []
    try:
        notices = claim_for_digest(owner.id, utcnow())
        subject, text, html = compose_digest(owner, day, notices)
        send_mail(owner.email, subject, text, html)
    except BaseException:
        release_digest(owner.id, notices)
        _withdraw_claim(owner.id, day)
        raise
    return True


def owners_due(now: datetime) -> list[Owner]:
    """Owners whose local hour at `now` is the digest hour they chose."""
    owners = db.session.scalars(
        select(Owner).where(Owner.digest_hour.is_not(None)).order_by(Owner.id)
    ).all()
    return [o for o in owners if local_now(o, now).hour == o.digest_hour]


def send_due_digests(now: datetime | None = None) -> list[int]:
    """Send today's digest to every owner whose digest hour it is; returns the owners sent to.

    Safe to run as often as the scheduler likes within the hour. One owner's failure does not
    stop the others; failures are raised together at the end, so the job shows as failed.
    """
    now = now or utcnow()
    sent: list[int] = []
    failures: list[str] = []
    for owner in owners_due(now):
        day = local_now(owner, now).date()
        try:
            if send_digest(owner, day):
                sent.append(owner.id)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("digest for owner %s not sent: %s", owner.id, exc)
            failures.append(f"owner {owner.id}: {exc}")
    if failures:
        raise MailError("digests not sent (will retry next run): " + "; ".join(failures))
    return sent
