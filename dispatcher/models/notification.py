"""Notifications to the owner: what they chose (NotificationSettings) and what was sent
(Notification, one row per event and channel, claimed before the send: each one goes once)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime, utcnow


class NotificationSettings(db.Model):
    """One owner's choice; an owner without a row gets the defaults (email in the digest)."""

    __tablename__ = "notification_settings"

    owner_id: Mapped[int] = mapped_column(
        ForeignKey("owners.id", ondelete="CASCADE"), primary_key=True
    )
    #: "digest" (in the daily digest), "immediate" (a mail within a minute) or "off"
    email: Mapped[str] = mapped_column(String(10), default="digest")
    #: the owner's Slack incoming-webhook URL, sealed (dispatcher/secretbox.py); empty: none
    slack_url_sealed: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Notification(db.Model):
    """A claim on telling the owner about one Event through one channel ("email" or "slack").

    The unique key is what makes each notification go once: a run inserts its claims and
    commits before sending, and a second run cannot claim the same (owner, event, channel)."""

    __tablename__ = "notifications"
    __table_args__ = (UniqueConstraint("owner_id", "event_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    #: "immediate" or "digest" for email; "immediate" for Slack
    via: Mapped[str] = mapped_column(String(10), default="immediate")
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
