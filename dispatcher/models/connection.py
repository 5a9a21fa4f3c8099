"""An owner's connection to one channel: which adapter, its credentials (encrypted at rest),
its options, and its own webhook path and signing secret (DESIGN rule 7)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dispatcher import secretbox
from dispatcher.extensions import db
from dispatcher.models._base import UTCDateTime, utcnow


class Connection(db.Model):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("owners.id", ondelete="CASCADE"), index=True)
    adapter: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(120))
    #: Fernet token of the credentials as JSON (never plaintext in the database)
    credentials_sealed: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: the unguessable part of /webhooks/<adapter>/<webhook_path>
    webhook_path: Mapped[str] = mapped_column(String(64), unique=True)
    #: Fernet token of the webhook signing secret
    webhook_secret_sealed: Mapped[str] = mapped_column(Text, default="")
    #: bumped on every change, so a cached adapter built from an older copy is rebuilt
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_ok: Mapped[bool | None] = mapped_column()
    check_message: Mapped[str | None] = mapped_column(Text)

    @property
    def credentials(self) -> dict[str, str]:
        return secretbox.open_json(self.credentials_sealed)

    @credentials.setter
    def credentials(self, value: dict[str, str]) -> None:
        self.credentials_sealed = secretbox.seal_json(dict(value))

    @property
    def webhook_secret(self) -> str:
        return secretbox.open_(self.webhook_secret_sealed) if self.webhook_secret_sealed else ""

    @webhook_secret.setter
    def webhook_secret(self, value: str) -> None:
        self.webhook_secret_sealed = secretbox.seal(value)

    def __repr__(self) -> str:  # never the secrets, even in a traceback
        return f"<Connection {self.id} {self.adapter} {self.label!r} owner={self.owner_id}>"
