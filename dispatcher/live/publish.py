"""Publish every Event to Redis pub/sub once its transaction has committed.

One place for every change: the Event rows a transaction adds (DESIGN rule 1: every state
change writes one) are noted at flush and published after commit, from whichever process
committed them (web, worker, scheduler). A rolled-back change is never published. Redis is
only a transport here: if it is down the message is lost and the page shows the change at
its next load, so a publish error is logged, never raised.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, current_app, has_app_context
from redis.client import Pipeline
from redis.exceptions import RedisError
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from dispatcher.models import Event

log = logging.getLogger(__name__)

#: Redis channel of one owner's changes; the stream server subscribes to the pattern.
CHANNEL = "dispatcher:live:{owner_id}"
PATTERN = "dispatcher:live:*"
_PENDING = "dispatcher.live.pending"
_HOLD = "dispatcher.live.hold"
_HELD = "dispatcher.live.held"


def channel_for(owner_id: int) -> str:
    return CHANNEL.format(owner_id=owner_id)


def message_for(event: Event) -> dict[str, Any]:
    """What a page needs to show one change without a reload. Only the job's own moves carry
    a status for its chip; its assignments', orders' and deliveries' ("<entity>.<action>")
    go to the timeline only."""
    from dispatcher.web.common import status_class, status_label

    own = "." not in event.kind
    to_status = event.to_status if own else None
    return {
        "id": event.id,
        "job": event.job_id,
        "goal": event.goal_id,
        "kind": event.kind,
        "label": status_label(event.kind),
        "from": event.from_status if own else None,
        "to": to_status,
        "to_label": status_label(to_status) if to_status else None,
        "to_class": status_class(to_status) if to_status else None,
        "actor": event.actor,
        "at": event.created_at.isoformat() if event.created_at else None,
    }


def _note_new_events(session: Session, flush_context: Any) -> None:
    # Read now: after the commit the rows are expired and the session may emit no SQL.
    messages = [(row.owner_id, message_for(row)) for row in session.new if isinstance(row, Event)]
    if messages:
        session.info.setdefault(_PENDING, []).extend(messages)


def note_inserted(session: Session, events: list[Event]) -> None:
    """Publish, after commit, Events inserted without a flush (a Core INSERT, which
    `_note_new_events` never sees), as it publishes those a flush wrote."""
    if sa_event.contains(Session, "after_commit", _publish_after_commit):
        messages = [(row.owner_id, message_for(row)) for row in events]
        session.info.setdefault(_PENDING, []).extend(messages)


def _publish_after_commit(session: Session) -> None:
    messages = session.info.pop(_PENDING, None)
    if session.info.pop(_HOLD, False):
        session.info[_HELD] = messages or []
        return
    if messages and has_app_context():
        publish(messages, current_app._get_current_object())


def _forget(session: Session, *args: Any) -> None:
    for key in (_PENDING, _HOLD, _HELD):
        session.info.pop(key, None)


def hold(session: Session) -> None:
    """Keep the next commit's messages for the caller (`take_held`), who sends them in a
    round trip it makes anyway (issue 12: a lone dispatch's hand-over), instead of one of
    their own. Still only what committed: a rollback forgets them."""
    session.info[_HOLD] = True


def take_held(session: Session) -> list[tuple[int, dict[str, Any]]]:
    """What the commit after `hold` kept (nothing if it did not commit); ends the hold."""
    session.info.pop(_HOLD, None)
    return session.info.pop(_HELD, None) or []


def add_to(pipe: Pipeline, messages: list[tuple[int, dict[str, Any]]]) -> None:
    """Queue the publishes of `messages` on the caller's pipeline (sent with its commands;
    its caller logs a Redis error, never raises it)."""
    for owner_id, message in messages:
        pipe.publish(channel_for(owner_id), json.dumps(message))


def publish(messages: list[tuple[int, dict[str, Any]]], app: Flask) -> None:
    """Send each (owner id, message) to the owner's channel, in one round trip."""
    from dispatcher.queues import redis_connection

    try:
        pipe = redis_connection(app).pipeline(transaction=False)
        add_to(pipe, messages)
        pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("live updates not published (%s); pages show them on reload", exc)


def init_app(app: Flask) -> None:
    """Listen on every session (once per process: the listeners are global and idempotent)."""
    if not sa_event.contains(Session, "after_flush", _note_new_events):
        sa_event.listen(Session, "after_flush", _note_new_events)
        sa_event.listen(Session, "after_commit", _publish_after_commit)
        sa_event.listen(Session, "after_soft_rollback", _forget)
