"""The owner's choice of how to be told: email at once, in the digest, or not; and Slack."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dispatcher import secretbox
from dispatcher.extensions import db
from dispatcher.models import NotificationSettings


class EmailMode(StrEnum):
    DIGEST = "digest"
    IMMEDIATE = "immediate"
    OFF = "off"


DEFAULT_EMAIL = EmailMode.DIGEST


@dataclass(frozen=True)
class Prefs:
    email: EmailMode
    slack_url: str  # empty: no Slack


def prefs_of(owner_id: int) -> Prefs:
    """The owner's settings, or the defaults when they never saved any."""
    row = db.session.get(NotificationSettings, owner_id)
    if row is None:
        return Prefs(DEFAULT_EMAIL, "")
    slack = secretbox.open_(row.slack_url_sealed) if row.slack_url_sealed else ""
    return Prefs(EmailMode(row.email), slack)


def save_prefs(owner_id: int, email: EmailMode, slack_url: str | None) -> None:
    """Store the choice; `slack_url` None keeps the stored URL, "" removes it. Caller commits."""
    row = db.session.get(NotificationSettings, owner_id)
    if row is None:
        row = NotificationSettings(owner_id=owner_id, email=str(DEFAULT_EMAIL), slack_url_sealed="")
        db.session.add(row)
    row.email = str(email)
    if slack_url is not None:
        row.slack_url_sealed = secretbox.seal(slack_url) if slack_url else ""
