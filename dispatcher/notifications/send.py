"""The RQ task that tells owners: one mail (and one Slack message) per owner per batch.

`notify_owners` runs on the slow queue every `SCAN_SECONDS` (dispatcher/periodic.py); how it
finds and claims Events, and why that is a scan, is in dispatcher/notifications/claims.py.
Owners who chose the digest get their notices there instead (dispatcher/notifications/digest.py,
called by dispatcher/mail.py when the digest goes out).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.mail import send_mail
from dispatcher.models import Owner
from dispatcher.models._base import utcnow
from dispatcher.notifications.claims import EMAIL, SLACK, claim, owners_with_pending, withdraw
from dispatcher.notifications.prefs import EmailMode, prefs_of
from dispatcher.notifications.render import compose, slack_text
from dispatcher.notifications.slack import SlackError, post_text
from dispatcher.queues import SLOW

log = logging.getLogger(__name__)

SCAN_SECONDS = 30


class NotifyError(DispatcherError):
    """Some owners' notifications could not be sent; they are retried on the next run."""


def notify_owner(owner: Owner, now: datetime) -> dict[str, int]:
    """Send what `owner` was not told yet, by the channels they chose; counts per channel."""
    prefs = prefs_of(owner.id)
    sent: dict[str, int] = {}
    if prefs.email == EmailMode.IMMEDIATE:
        batch = claim(owner.id, EMAIL, now)
        if batch:
            try:
                send_mail(owner.email, *compose(owner, batch))
            except BaseException:
                withdraw(owner.id, EMAIL, batch)
                raise
            sent[EMAIL] = len(batch)
    if prefs.slack_url:
        batch = claim(owner.id, SLACK, now)
        if batch:
            try:
                post_text(prefs.slack_url, slack_text(batch))
            except BaseException:
                withdraw(owner.id, SLACK, batch)
                raise
            sent[SLACK] = len(batch)
    return sent


def notify_owners(now: datetime | None = None) -> dict[int, dict[str, int]]:
    """The periodic task: every owner with something new. One owner's failure does not stop
    the others; the failures are raised together at the end so the job shows as failed."""
    now = now or utcnow()
    done: dict[int, dict[str, int]] = {}
    failures: list[str] = []
    for owner_id in owners_with_pending(now):
        owner = db.session.get(Owner, owner_id)
        if owner is None:
            continue
        try:
            sent = notify_owner(owner, now)
        except (OSError, smtplib.SMTPException, SlackError) as exc:
            log.warning("notifications for owner %s not sent: %s", owner_id, exc)
            failures.append(f"owner {owner_id}: {exc}")
            continue
        if sent:
            done[owner_id] = sent
    if failures:
        raise NotifyError("notifications not sent (will retry next run): " + "; ".join(failures))
    return done


PERIODIC_JOBS = [(notify_owners, SCAN_SECONDS, SLOW)]
