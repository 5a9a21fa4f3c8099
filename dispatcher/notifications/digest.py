"""The digest's share of the notifications: claimed when the digest goes out, for owners
who chose "in the digest" (the default). dispatcher/mail.py calls these; the claims are the
same rows as for an immediate mail (channel "email"), so switching modes never repeats one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dispatcher.notifications.claims import EMAIL, claim, withdraw
from dispatcher.notifications.kinds import Notice
from dispatcher.notifications.prefs import EmailMode, prefs_of


def claim_for_digest(owner_id: int, now: datetime) -> list[Notice]:
    """The notices the digest carries (claimed): only for owners who chose the digest."""
    if prefs_of(owner_id).email != EmailMode.DIGEST:
        return []
    return claim(owner_id, EMAIL, now, via="digest", wait_for_quiet=False)


def release_digest(owner_id: int, notices: Sequence[Notice]) -> None:
    """The digest was not sent: its notices go in the next one (or the next run)."""
    if notices:
        withdraw(owner_id, EMAIL, notices)
