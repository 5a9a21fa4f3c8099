"""Goals: the measurable macro goal, its budget, and the result metric logged over time."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime, utcnow


class Goal(db.Model):
    __tablename__ = "goals"
    __table_args__ = (
        CheckConstraint("reserved_cents >= 0", name="reserved_nonneg"),
        CheckConstraint("spent_cents >= 0", name="spent_nonneg"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    why: Mapped[str] = mapped_column(Text, default="")
    metric_name: Mapped[str] = mapped_column(String(120), default="")
    baseline: Mapped[float | None] = mapped_column()
    target: Mapped[float | None] = mapped_column()
    deadline: Mapped[date | None] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    budget_cents: Mapped[int] = mapped_column(default=0)
    reserved_cents: Mapped[int] = mapped_column(default=0)
    spent_cents: Mapped[int] = mapped_column(default=0)
    personal: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    jobs: Mapped[list[MicroJob]] = relationship(  # noqa: F821
        back_populates="goal", cascade="all, delete-orphan", passive_deletes=True
    )
    metric_values: Mapped[list[MetricValue]] = relationship(
        back_populates="goal", cascade="all, delete-orphan", order_by="MetricValue.on"
    )

    @property
    def available_cents(self) -> int:
        return self.budget_cents - self.reserved_cents - self.spent_cents


class MetricValue(db.Model):
    """One reading of the goal's result metric (visits, posts published, signups...)."""

    __tablename__ = "metric_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    goal_id: Mapped[int] = mapped_column(ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    on: Mapped[date] = mapped_column()
    value: Mapped[float] = mapped_column()
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    goal: Mapped[Goal] = relationship(back_populates="metric_values")
