"""The outbox: notices to teammates, staged in the transaction that causes them (a dispatch
placed, a decision, an answer) and sent by the `send_outbox` task on the slow queue.

Never twice:
1. `send_outbox` claims the row (PENDING -> SENDING, attempt counted, lease set) in one
   conditional UPDATE and commits before calling out: two workers never hold one row.
2. A failure that surely reached nobody (the adapter raises RetryableAdapterError: refused
   before DATA, server unreachable) puts the row back to PENDING with a jittered backoff.
   Anything else fails it for good, with the reason; an attempt of unknown outcome is never
   repeated (at most once: a teammate missing a mail sees the job in the owner's follow-up,
   a duplicate brief or decision would confuse them and cannot be taken back).
3. A row left SENDING past its lease (the worker died mid-attempt) is settled by the
   reconciler: the adapter is asked whether the notice arrived (`was_notified`); yes -> SENT,
   no -> retried, cannot tell -> FAILED.
Enqueueing happens after the commit (a session hook below); the reconciler enqueues every
PENDING row RQ does not hold, so a lost enqueue only delays a notice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from rq import Retry
from sqlalchemy import event, or_, select, update

from adapters.base import Notice
from dispatcher import connections
from dispatcher.dispatch.backoff import backoff_for, lease, reschedule
from dispatcher.errors import AdapterError, DispatcherError, RetryableAdapterError
from dispatcher.extensions import db
from dispatcher.lifecycle import OUTBOX, OutboxState
from dispatcher.models import Assignment, Dispatch, OutboxMessage
from dispatcher.models._base import utcnow
from dispatcher.people.directory import person_ref
from dispatcher.queues import SLOW, enqueue_once, enqueue_quietly
from dispatcher.teammates import links

log = logging.getLogger(__name__)

O = OutboxState  # noqa: E741
_STAGED = "dispatcher.outbox_staged"


def stage(
    place: Assignment, kind: str, subject: str, text: str, *, key: str, with_link: bool = False
) -> OutboxMessage:
    """Add one notice to the outbox in the caller's transaction; sent after its commit."""
    dispatch = place.dispatch or db.session.get(Dispatch, place.dispatch_id)
    message = OutboxMessage(
        key=key,
        connection_id=dispatch.connection_id,
        assignment_id=place.id,
        kind=kind,
        subject=subject[:300],
        text=text,
        with_link=with_link,
        state=O.PENDING,
    )
    db.session.add(message)
    db.session.flush()
    db.session.info.setdefault(_STAGED, set()).add(message.id)
    return message


def init_app(app) -> None:
    """Enqueue staged notices once their transaction commits (never before: RQ-NOTES)."""
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)
        event.listen(db.session, "after_soft_rollback", _after_rollback)


def _after_commit(session) -> None:
    staged = session.info.pop(_STAGED, None)
    for message_id in sorted(staged or ()):
        enqueue_quietly(enqueue_send, message_id)


def _after_rollback(session, previous_transaction) -> None:
    session.info.pop(_STAGED, None)


def send_job_id(message_id: int) -> str:
    return f"outbox-{message_id}"


def enqueue_send(message_id: int) -> bool:
    """Queue the send (a no-op if already queued); raises RedisError (the reconciler)."""
    return (
        enqueue_once(SLOW, send_outbox, message_id, job_id=send_job_id(message_id), job_timeout=60)
        is not None
    )


def claim(message_id: int) -> bool:
    """PENDING and due -> SENDING, attempt counted, lease taken: one conditional UPDATE."""
    now = utcnow()
    settings = current_app.config["SETTINGS"]
    written = db.session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == O.PENDING,
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )
        .values(
            state=OUTBOX.target(O.PENDING, "claim"),
            attempts=OutboxMessage.attempts + 1,
            lease_until=now + lease(settings),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return written == 1


def send_outbox(message_id: int) -> str | Retry:
    """Send one notice, at most once (see the module's docstring). The RQ task, by id."""
    if not claim(message_id):
        message = db.session.get(OutboxMessage, message_id)
        if message is None:
            return "gone"
        if message.state == O.PENDING and message.next_attempt_at is not None:
            return reschedule(message.next_attempt_at)
        return f"busy: {message.state}"  # another attempt holds it, or it is settled
    message = db.session.get(OutboxMessage, message_id)
    try:
        notice, adapter = _prepare(message)
        db.session.commit()  # the minted link exists before the mail naming it leaves
    except DispatcherError as exc:
        db.session.rollback()
        return _settle(message_id, "fail", last_error=f"cannot send: {exc}"[:2000])
    try:
        adapter.notify(notice)
    except RetryableAdapterError as exc:
        return _retry(message_id, exc)
    except AdapterError as exc:
        return _settle(message_id, "fail", last_error=str(exc)[:2000])
    return _settle(message_id, "sent", sent_at=utcnow(), last_error=None)


def _prepare(message: OutboxMessage):
    place = message.assignment
    if place is None or message.connection_id is None:
        raise DispatcherError("its assignment or connection is gone")
    person = person_ref(place.person_id)
    if person is None:
        raise DispatcherError("the assignment names no person")
    adapter = connections.adapter_for_connection(message.connection_id)
    dispatch = db.session.get(Dispatch, place.dispatch_id)
    notice = Notice(
        key=message.key,
        kind=message.kind,
        person=person,
        subject=message.subject,
        text=message.text,
        job_id=place.job_id,
        external_id=dispatch.external_id or "",
        submission_url=links.mint(place) if message.with_link else "",
    )
    return notice, adapter


def _settle(message_id: int, action: str, **values) -> str:
    """SENDING -> SENT / FAILED / PENDING, guarded: a row settled meanwhile is left alone."""
    done = OUTBOX.guarded_update(OutboxMessage, message_id, action, lease_until=None, **values)
    db.session.commit()
    return OUTBOX.table[action][1] if done else "settled meanwhile"


def _retry(message_id: int, exc: RetryableAdapterError) -> str | Retry:
    settings = current_app.config["SETTINGS"]
    message = db.session.get(OutboxMessage, message_id)
    if message.attempts >= settings.outbox_max_attempts:
        return _settle(message_id, "fail", last_error=f"gave up after {message.attempts}: {exc}")
    at = utcnow() + timedelta(seconds=backoff_for(settings, message.attempts, exc.retry_after))
    _settle(message_id, "retry", next_attempt_at=at, last_error=str(exc)[:2000])
    return reschedule(at)


# -- the reconciler's part ------------------------------------------------------------------
def pending_ids() -> list[int]:
    return list(
        db.session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.state == O.PENDING)
            .order_by(OutboxMessage.id)
        )
    )


def settle_abandoned() -> int:
    """Rows left SENDING past their lease (their worker died mid-attempt): ask the channel
    whether the notice arrived; sent, retried, or failed when it cannot tell."""
    stale = list(
        db.session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.state == O.SENDING, OutboxMessage.lease_until < utcnow()
            )
        )
    )
    for message in stale:
        try:
            arrived = connections.adapter_for_connection(message.connection_id).was_notified(
                message.key
            )
        except DispatcherError:
            arrived = None
        if arrived is True:
            _settle(message.id, "sent", sent_at=utcnow())
        elif arrived is False:
            _settle(message.id, "retry", next_attempt_at=None,
                    last_error="the attempt's worker died before sending")  # fmt: skip
        else:
            _settle(message.id, "fail",
                    last_error="the attempt's worker died mid-send: it may have arrived, "
                    "so it is not sent again")  # fmt: skip
    return len(stale)
