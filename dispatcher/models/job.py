"""Micro-jobs: a tree of any depth under a goal. Leaves carry the work; parents group it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models._base import UTCDateTime, utcnow

DELIVERABLE_KINDS = ("text", "url", "file")
MODES = ("undecided", "keep", "delegate")


class MicroJob(db.Model):
    __tablename__ = "micro_jobs"
    __table_args__ = (
        CheckConstraint("reserved_cents >= 0", name="reserved_nonneg"),
        CheckConstraint("assignments >= 1", name="assignments_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("micro_jobs.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    title: Mapped[str] = mapped_column(String(300))
    brief: Mapped[str] = mapped_column(Text, default="")
    acceptance_criteria: Mapped[list[str]] = mapped_column(JSON, default=list)
    deliverable_kind: Mapped[str] = mapped_column(String(10), default="text")
    estimate_minutes: Mapped[int | None] = mapped_column()
    due_date: Mapped[date | None] = mapped_column()
    planned_for: Mapped[date | None] = mapped_column(index=True)
    price_cents: Mapped[int] = mapped_column(default=0)
    # Stated by the owner: this job pays nothing. A paid channel refuses a job with no price
    # unless it is marked free, so a forgotten price never goes out as a 0.00 order.
    free: Mapped[bool] = mapped_column(default=False)
    mode: Mapped[str] = mapped_column(String(10), default="undecided")
    #: the adapter's name, kept from the connection (what the pages and rollups group by)
    channel: Mapped[str | None] = mapped_column(String(60))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    channel_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: the one named person this job goes to (through a teammate channel), if any
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    assignments: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(20), default=Status.DRAFT, index=True)
    # An optional budget envelope on any node; spend and reservations roll up to the goal.
    budget_cents: Mapped[int | None] = mapped_column()
    reserved_cents: Mapped[int] = mapped_column(default=0)
    spent_cents: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: which text (title, brief, criteria) is current; an edit after an order held it adds one
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    goal: Mapped[Goal] = relationship(back_populates="jobs")  # noqa: F821
    parent: Mapped[MicroJob | None] = relationship(
        back_populates="children", remote_side="MicroJob.id"
    )
    children: Mapped[list[MicroJob]] = relationship(
        back_populates="parent", order_by="MicroJob.position", passive_deletes=True
    )
    dispatches: Mapped[list[Dispatch]] = relationship(  # noqa: F821
        back_populates="job", order_by="Dispatch.id", passive_deletes=True
    )
    deliveries: Mapped[list[Delivery]] = relationship(  # noqa: F821
        back_populates="job", order_by="Delivery.id", passive_deletes=True
    )
    assignment_rows: Mapped[list[Assignment]] = relationship(  # noqa: F821
        order_by="Assignment.id", viewonly=True
    )

    @property
    def cost_cents(self) -> int:
        """What delegating this job reserves: price times assignments."""
        return self.price_cents * self.assignments


class JobVersion(db.Model):
    """A job's text as an order saw it: kept when an edit replaces a version an order holds,
    so the timeline can say what each order was asked to do."""

    __tablename__ = "job_versions"
    __table_args__ = (UniqueConstraint("job_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("micro_jobs.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(String(300))
    brief: Mapped[str] = mapped_column(Text, default="")
    acceptance_criteria: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
