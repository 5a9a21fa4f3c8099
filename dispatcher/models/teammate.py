"""What teammate channels keep: the submission links a person acts through (only the token's
hash is stored), and the outbox of notices to them (sent by a worker, never twice)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.extensions import db
from dispatcher.lifecycle.outbox import OutboxState
from dispatcher.models._base import UTCDateTime, utcnow


class SubmissionLink(db.Model):
    """A signed, expiring link to one assignment's submission page. The raw token is in the
    mail only; a lookup by its SHA-256 hash finds the row, so no token comparison leaks."""

    __tablename__ = "submission_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assignment: Mapped[Assignment] = relationship()  # noqa: F821


class OutboxMessage(db.Model):
    """One notice to a teammate, staged in the transaction that causes it. `key` is the
    idempotency key (the mail's Message-ID is derived from it)."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text, default="")
    #: whether a fresh submission link is minted into the message when it is sent
    with_link: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(10), default=OutboxState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    assignment: Mapped[Assignment | None] = relationship()  # noqa: F821
