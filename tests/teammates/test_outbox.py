"""The outbox: staged with what causes it, sent once even when two attempts race, retried
only when the server surely took nothing, never resent after an attempt of unknown outcome."""

from __future__ import annotations

import threading

import pytest
from security.mailbox import free_port
from sqlalchemy import select

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import OutboxMessage
from dispatcher.teammates import outbox


def _staged_brief(job) -> OutboxMessage:
    """Dispatch, place the order (the send task), but keep the brief unsent."""
    from dispatcher.dispatch.send import send_dispatch

    dispatch = dispatch_service.dispatch_job(job, commit=False)
    db.session.commit()
    assert send_dispatch(dispatch.id) == "placed"
    return db.session.scalars(select(OutboxMessage)).one()


def test_the_brief_is_staged_with_the_placed_order(job, inbox):
    message = _staged_brief(job)
    assert (message.kind, message.state, message.with_link) == ("brief", "pending", True)
    assert inbox.messages == []


def test_two_concurrent_sends_send_once(app, job, inbox):
    message_id = _staged_brief(job).id
    inbox.delay = 0.5  # the first attempt is still at the server when the second comes
    barrier = threading.Barrier(2)
    results: list[str] = []

    def attempt():
        with app.app_context():
            barrier.wait()
            results.append(str(outbox.send_outbox(message_id)))
            db.session.remove()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # both ran: one sent, the other found the row claimed (the contention happened)
    assert sorted(results) == ["busy: sending", "sent"]
    assert len(inbox.messages) == 1
    db.session.expire_all()
    row = db.session.get(OutboxMessage, message_id)
    assert (row.state, row.attempts) == ("sent", 1)
    assert outbox.send_outbox(message_id) == "busy: sent"  # a late third try: still once
    assert len(inbox.messages) == 1


def test_message_id_comes_from_the_key(job, inbox):
    message = _staged_brief(job)
    outbox.send_outbox(message.id)
    assert inbox.messages[0]["Message-ID"].startswith(f"<{message.key}@")


@pytest.fixture
def dead_smtp(app):
    """Point the settings at a port nobody listens on."""
    from dataclasses import replace

    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = replace(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    app.extensions.get("dispatcher.connection_adapters", {}).clear()
    app.extensions["dispatcher.adapters"].settings = app.config["SETTINGS"]
    yield
    app.config["SETTINGS"] = settings
    app.extensions["dispatcher.adapters"].settings = settings
    app.extensions.get("dispatcher.connection_adapters", {}).clear()


def test_an_unreachable_server_is_retried_later(job, dead_smtp):
    message = _staged_brief(job)
    result = outbox.send_outbox(message.id)
    assert type(result).__name__ == "Retry"
    db.session.expire_all()
    row = db.session.get(OutboxMessage, message.id)
    assert row.state == "pending" and row.attempts == 1 and row.next_attempt_at is not None
    assert "unreachable" in row.last_error


def test_a_worker_dead_mid_send_is_not_resent_over_smtp(job, inbox):
    """The claim committed, then the worker died: SMTP cannot say whether the mail went, so
    the reconciler fails the row instead of sending it again (at most once)."""
    from datetime import timedelta

    from dispatcher.models._base import utcnow

    message = _staged_brief(job)
    assert outbox.claim(message.id)
    db.session.execute(db.update(OutboxMessage).values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert outbox.settle_abandoned() == 1
    db.session.expire_all()
    row = db.session.get(OutboxMessage, message.id)
    assert row.state == "failed" and "not sent again" in row.last_error
    assert inbox.messages == []
