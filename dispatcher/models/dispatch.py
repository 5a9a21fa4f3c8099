"""Dispatches (one order at a channel), the assignments it holds (one per worker's place),
what comes back (deliveries, each from one assignment), and the owner's review."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.extensions import db
from dispatcher.lifecycle import AssignmentState, DeliveryState, DispatchState, PushState
from dispatcher.models._base import UTCDateTime, utcnow


class Dispatch(db.Model):
    __tablename__ = "dispatches"
    #: serves every look-up by state (its first column) and the batch claim's choice of a
    #: channel's due rows in id order (send_batch._claim_many): read in index order up to the
    #: batch's size, whatever the statistics say. A plain `state` index beside it would win
    #: the planner's choice whenever stale statistics make "pending" look rare, and sort the
    #: whole backlog on each claim (issue 12).
    __table_args__ = (
        Index("ix_dispatches_state_channel", "state", "adapter", "connection_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("micro_jobs.id", ondelete="CASCADE"), index=True)
    adapter: Mapped[str] = mapped_column(String(60))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(20), default=DispatchState.PENDING)
    amount_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    external_id: Mapped[str | None] = mapped_column(String(120), index=True)
    external_url: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_version: Mapped[int | None] = mapped_column()  # the job's text this order went out with

    job: Mapped[MicroJob] = relationship(back_populates="dispatches")  # noqa: F821
    connection: Mapped[Connection | None] = relationship()  # noqa: F821
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="dispatch")
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="dispatch", order_by="Assignment.position", passive_deletes=True
    )


class Assignment(db.Model):
    """One worker's place in an order. Money is held here: `held_cents` is reserved (or, once
    accepted, "paying") until the platform confirms the payment or the place ends unpaid."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("dispatch_id", "position"),
        CheckConstraint("held_cents >= 0", name="held_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(
        ForeignKey("dispatches.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("micro_jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column()  # 1..N within its order
    #: the platform's id of this place (slot, worker's copy), once it names one
    external_ref: Mapped[str | None] = mapped_column(String(120))
    worker_ref: Mapped[str] = mapped_column(String(120), default="")
    #: the owner's person who holds this place (teammate channels); the scorecards read it
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(20), default=AssignmentState.OPEN, index=True)
    price_cents: Mapped[int] = mapped_column(default=0)  # the worker's pay for this place
    fee_cents: Mapped[int] = mapped_column(default=0)  # the platform's fee on top
    held_cents: Mapped[int] = mapped_column(default=0)  # reserved or paying, not yet spent
    paid_cents: Mapped[int] = mapped_column(default=0)  # what the worker was paid
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    dispatch: Mapped[Dispatch] = relationship(back_populates="assignments")
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="assignment", order_by="Delivery.id"
    )


class Delivery(db.Model):
    """Work that came back: from a platform's worker, or a teammate's submission page."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("job_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("micro_jobs.id", ondelete="CASCADE"), index=True)
    dispatch_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispatches.id", ondelete="SET NULL"), index=True
    )
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(120))
    worker_ref: Mapped[str] = mapped_column(String(120), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(20), default=DeliveryState.SUBMITTED, index=True)
    raw: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    job: Mapped[MicroJob] = relationship(back_populates="deliveries")  # noqa: F821
    dispatch: Mapped[Dispatch | None] = relationship(back_populates="deliveries")
    assignment: Mapped[Assignment | None] = relationship(back_populates="deliveries")
    reviews: Mapped[list[Review]] = relationship(back_populates="delivery", order_by="Review.id")


class Review(db.Model):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(String(20))  # accept | revise | reject
    feedback: Mapped[str] = mapped_column(Text, default="")
    rating: Mapped[int | None] = mapped_column()
    payout_cents: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    push_state: Mapped[str] = mapped_column(String(10), default=PushState.OWED, index=True)
    #: calls made to tell the platform; after the first, the platform is asked what it holds
    #: before the decision is sent again (DESIGN rule 3)
    push_attempts: Mapped[int] = mapped_column(default=0)
    #: while an attempt is out at the platform, no other attempt may start (a worker judged
    #: dead while it still runs must not send the decision a second time); it runs out
    push_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    delivery: Mapped[Delivery] = relationship(back_populates="reviews")
