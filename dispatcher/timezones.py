"""Owners' time zones: one place that turns a zone name into dates and deadlines.

An owner's "today", a period that starts on a date, a job due on a date: all are calendar
days in the owner's zone, not UTC's. Nothing here touches the database.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The widest offsets any zone has: a UTC date is at most this far from a local one.
MAX_AHEAD = timedelta(hours=14)


def zone(name: str | None) -> ZoneInfo:
    """The owner's zone; an unknown name falls back to UTC rather than breaking a page."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_date(name: str | None, now: datetime) -> date:
    """The calendar day it is at `now` (aware) in zone `name`."""
    if now.tzinfo is None:
        raise ValueError("give an aware datetime")
    return now.astimezone(zone(name)).date()


def end_of_day(day: date, name: str | None) -> datetime:
    """The instant `day` ends in zone `name` (midnight that starts the next day), aware."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone(name))
