"""Finding what the owner has not been told yet, and claiming it before it is sent.

Why a periodic scan of the Events table, not a hook where Events are written: a hook runs in
the writer's transaction (or after its commit) and would miss an Event whose process died
between the commit and the enqueue, or send for one whose transaction rolled back. The scan
reads only committed Events, and looks back `LOOKBACK` rather than from a remembered id (ids
are handed out before commit, so a low id can commit after a higher one was seen): it cannot
miss one. The Notification row, unique per (owner, event, channel), is committed before the
send, under a lock on the owner's row that makes two overlapping runs take turns (the same
style as the digest, dispatcher/mail.py): it cannot send twice. If the send fails the claim is
withdrawn and the next run tries again; if the process dies between the claim and the send,
that notification is lost (at most once, like the digest).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import IntegrityError

from dispatcher.extensions import db
from dispatcher.models import Event, MicroJob, Notification, Owner
from dispatcher.notifications.kinds import KINDS, Notice, describe

#: how far back a run looks for Events nobody was told about (more than a day: the digest)
LOOKBACK = timedelta(days=2)
#: a burst is sent once it has been quiet this long (50 deliveries arriving together: one mail)
QUIET = timedelta(seconds=20)
#: ... or once its oldest Event has waited this long, however busy it stays
MAX_WAIT = timedelta(minutes=5)

EMAIL = "email"
SLACK = "slack"


def _unclaimed(channel: str):
    return ~exists().where(Notification.event_id == Event.id, Notification.channel == channel)


def _pending(owner_id: int, channel: str, now: datetime):
    return (
        select(Event)
        .where(
            Event.owner_id == owner_id,
            Event.kind.in_(list(KINDS)),
            Event.created_at >= now - LOOKBACK,
            Event.created_at <= now,
            _unclaimed(channel),
        )
        .order_by(Event.id)
    )


def owners_with_pending(now: datetime) -> list[int]:
    """Owners with a recent Event not yet claimed by some channel (a cheap first filter)."""
    query = (
        select(Event.owner_id)
        .where(
            Event.kind.in_(list(KINDS)),
            Event.created_at >= now - LOOKBACK,
            _unclaimed(EMAIL) | _unclaimed(SLACK),
        )
        .distinct()
        .order_by(Event.owner_id)
    )
    return list(db.session.scalars(query))


def notices(events: Sequence[Event]) -> list[Notice]:
    """The Events as the owner reads them (job titles loaded in one query)."""
    job_ids = {e.job_id for e in events if e.job_id is not None}
    rows = db.session.execute(select(MicroJob.id, MicroJob.title).where(MicroJob.id.in_(job_ids)))
    titles = {job_id: title for job_id, title in rows} if job_ids else {}
    base = current_app.config["SETTINGS"].public_base_url.rstrip("/")
    result = []
    for event in events:
        title = titles.get(event.job_id, "")
        topic = KINDS[event.kind]
        url = f"{base}/jobs/{event.job_id}" if title else f"{base}/today"
        if topic == "delivery" and title:
            url = f"{base}/review"
        line = describe(event.kind, event.actor, event.data or {}, title)
        result.append(Notice(event.id, topic, event.job_id, title, line, url))
    return result


def preview(owner_id: int, channel: str, now: datetime) -> list[Notice]:
    """What a run would send now, without claiming it."""
    return notices(db.session.scalars(_pending(owner_id, channel, now)).all())


def _settled(events: Sequence[Event], now: datetime) -> bool:
    return events[-1].created_at <= now - QUIET or events[0].created_at <= now - MAX_WAIT


def claim(owner_id: int, channel: str, now: datetime, *, via: str = "immediate",
          wait_for_quiet: bool = True) -> list[Notice]:  # fmt: skip
    """Claim every pending Event of `owner_id` for `channel` and commit; the caller sends them.

    Returns [] when there is nothing, when the burst is still arriving (`wait_for_quiet`), or
    when another run claimed them first."""
    db.session.commit()  # a fresh transaction: the lock below must be its first write
    db.session.execute(
        update(Owner)
        .where(Owner.id == owner_id)
        .values(digest_hour=Owner.digest_hour)
        .execution_options(synchronize_session=False)
    )
    events = db.session.scalars(_pending(owner_id, channel, now)).all()
    if not events or (wait_for_quiet and not _settled(events, now)):
        db.session.rollback()
        return []
    claimed = notices(events)
    db.session.add_all(
        Notification(owner_id=owner_id, event_id=e.id, channel=channel, via=via, claimed_at=now)
        for e in events
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another run's claim committed first: theirs to send
        return []
    return claimed


def withdraw(owner_id: int, channel: str, claimed: Sequence[Notice]) -> None:
    """Give back claims whose send failed, so the next run sends them."""
    db.session.rollback()
    db.session.execute(
        delete(Notification).where(
            Notification.owner_id == owner_id,
            Notification.channel == channel,
            Notification.event_id.in_([n.event_id for n in claimed]),
        )
    )
    db.session.commit()
