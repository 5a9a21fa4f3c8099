"""The outbox: staged with what causes it, sent once even when two attempts race, retried
only when the server surely took nothing, never resent after an attempt of unknown outcome."""

from __future__ import annotations

import threading

import pytest
from fakes.smtp import free_port
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


class DropDuringData:
    """A loopback SMTP server that takes the whole message, then hangs up without answering:
    the sender cannot know whether it was queued."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 drop ESMTP\r\n")
                for raw in lines:
                    line = raw.strip().upper()
                    if line.startswith((b"EHLO", b"HELO")):
                        conn.sendall(b"250 drop\r\n")
                    elif line.startswith((b"MAIL", b"RCPT", b"RSET")):
                        conn.sendall(b"250 ok\r\n")
                    elif line == b"DATA":
                        conn.sendall(b"354 go on\r\n")
                        for body_line in lines:
                            if body_line in (b".\r\n", b".\n"):
                                break
                        self.received += 1
                        break  # hang up instead of "250 queued"
                    elif line == b"QUIT":
                        break

    def close(self):
        self.sock.close()


@pytest.fixture
def dropping_smtp(app):
    from dataclasses import replace

    server = DropDuringData()
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = replace(settings, smtp_url=f"smtp://127.0.0.1:{server.port}")
    app.extensions["dispatcher.adapters"].settings = app.config["SETTINGS"]
    app.extensions.get("dispatcher.connection_adapters", {}).clear()
    yield server
    server.close()
    app.config["SETTINGS"] = settings
    app.extensions["dispatcher.adapters"].settings = settings
    app.extensions.get("dispatcher.connection_adapters", {}).clear()


def test_an_attempt_of_unknown_outcome_is_never_resent(job, dropping_smtp, run_jobs):
    message = _staged_brief(job)
    assert outbox.send_outbox(message.id) == "failed"
    assert dropping_smtp.received == 1
    db.session.expire_all()
    row = db.session.get(OutboxMessage, message.id)
    assert row.state == "failed" and "outcome unknown" in row.last_error
    from dispatcher.reconcile import reconcile

    reconcile()
    run_jobs()
    assert outbox.send_outbox(message.id) == "busy: failed"
    assert dropping_smtp.received == 1


def test_the_reconciler_sends_what_redis_lost(app, job, inbox, redis_server, run_jobs):
    from dispatcher.reconcile import reconcile

    message = _staged_brief(job)
    redis_server.flushall()  # the enqueue after the commit is gone
    run_jobs()
    assert inbox.messages == []
    assert reconcile()["outbox"] == 1
    run_jobs()
    assert inbox.kinds() == ["brief"]
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).state == "sent"
