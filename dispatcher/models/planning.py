"""Planning aids: repeating micro-goals (cadences) and the owner's own playbooks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime, utcnow

CADENCE_UNITS = ("day", "week")


class Cadence(db.Model):
    """A micro-goal that repeats: every `every` `unit`s from `starts_on`, `count` times or
    until `until`, each period gets a fresh instance built from a playbook snapshot."""

    __tablename__ = "cadences"
    __table_args__ = (
        CheckConstraint("every >= 1", name="every_positive"),
        CheckConstraint("count IS NULL OR count >= 1", name="count_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("micro_jobs.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    playbook: Mapped[str] = mapped_column(String(80))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The playbook as it was when the cadence was set up: later edits do not change it.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    every: Mapped[int] = mapped_column(default=1)
    unit: Mapped[str] = mapped_column(String(5), default="week")
    starts_on: Mapped[date] = mapped_column()
    count: Mapped[int | None] = mapped_column()
    until: Mapped[date | None] = mapped_column()
    last_period: Mapped[int | None] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    runs: Mapped[list[CadenceRun]] = relationship(
        back_populates="cadence", cascade="all, delete-orphan", order_by="CadenceRun.period"
    )


class CadenceRun(db.Model):
    """One period's instance; unique per (cadence, period), so no period is ever built twice."""

    __tablename__ = "cadence_runs"
    __table_args__ = (UniqueConstraint("cadence_id", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cadence_id: Mapped[int] = mapped_column(ForeignKey("cadences.id", ondelete="CASCADE"))
    period: Mapped[int] = mapped_column()
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("micro_jobs.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cadence: Mapped[Cadence] = relationship(back_populates="runs")


class OwnerPlaybook(db.Model):
    """A breakdown an owner saved from one of their subtrees, listed beside the shipped ones."""

    __tablename__ = "owner_playbooks"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
