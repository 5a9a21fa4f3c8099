"""Where the poller stands with each polled order: its paging cursor, when to look next, and
how many looks in a row found nothing new (the backoff)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime


class PollState(db.Model):
    __tablename__ = "poll_states"

    dispatch_id: Mapped[int] = mapped_column(
        ForeignKey("dispatches.id", ondelete="CASCADE"), primary_key=True
    )
    #: the platform's paging token inside an unfinished scan; None: start from the top
    cursor: Mapped[str | None] = mapped_column(String(500))
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    #: scans in a row that found nothing new; the wait doubles with each
    idle_polls: Mapped[int] = mapped_column(default=0)
    polls: Mapped[int] = mapped_column(default=0)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
