"""The append-only record: every transition (Event) and every webhook received (InboundEvent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime, utcnow


class Event(db.Model):
    """One entry of the audit trail. It outlives what it describes: deleting a job or a goal
    leaves its events, with the reference set NULL."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    goal_id: Mapped[int | None] = mapped_column(
        ForeignKey("goals.id", ondelete="SET NULL"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("micro_jobs.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120), default="system")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class InboundEvent(db.Model):
    """A webhook as received, or a change the poller saw: stored before it is applied,
    unique per (connection, event id). A polled row's body is the normalized event as JSON
    (dispatcher/inbound/stored.py), with the platform's own item inside."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("connection_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    adapter: Mapped[str] = mapped_column(String(60))
    #: the connection whose webhook URL (and secret) it came through
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(200))
    #: "webhook" (body: the bytes as received) or "poll" (body: the normalized event)
    source: Mapped[str] = mapped_column(String(10), default="webhook", server_default="webhook")
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[str] = mapped_column(Text)
    # received | applied | ignored | invalid | quarantined
    status: Mapped[str] = mapped_column(String(20), default="received", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
