"""People: the owner's teammates and regular freelancers, the ones a job can go to by name.

A person is not an account: they never log in. Work reaches them through a teammate channel
(email, Slack, their own webhook endpoint, Trello, Asana) and comes back through a signed link
or the channel's callback. Their scorecard is computed from the assignments that name them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime, utcnow


class Person(db.Model):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str] = mapped_column(String(254), default="")
    #: handles on the services a teammate channel reaches them through (mention, member,
    #: assignee); empty when the owner has not given one
    slack_handle: Mapped[str] = mapped_column(String(120), default="")
    trello_handle: Mapped[str] = mapped_column(String(120), default="")
    asana_handle: Mapped[str] = mapped_column(String(120), default="")
    #: their own system's endpoint, for the webhook channel
    endpoint_url: Mapped[str] = mapped_column(String(1000), default="")
    #: what they are paid per job when a job names no price; None: paid what the job says
    rate_cents: Mapped[int | None] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    notes: Mapped[str] = mapped_column(Text, default="")
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.name!r} owner={self.owner_id}>"
