"""Issue 12, group commit of webhook intake: webhooks that wait for the writer at the same
moment are stored in one transaction and queued in one round trip, and each is answered
only after that transaction committed. The tests hold the writer's turn themselves, so the
group forms every time (and they check that it did), then let it go."""

from __future__ import annotations

import threading
import time

import pytest
from dispatch.helpers import hook_url, signed_webhook
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from dispatcher.extensions import db
from dispatcher.inbound import group_commit
from dispatcher.inbound.intake_connection import intake_engine
from dispatcher.models import Connection, InboundEvent
from dispatcher.queues import INBOUND, enqueue_many_once, get_queue


class Senders:
    """Threads posting webhooks (each its own test client) while the test holds the writer."""

    def __init__(self, app):
        self.app = app
        self.lane = group_commit._lane(app)
        self.answers: list[tuple[int, dict]] = []
        self.errors: list[BaseException] = []
        self.threads: list[threading.Thread] = []

    def post(self, url: str, headers: dict, body: bytes) -> None:
        def send():
            answer = self.app.test_client().post(url, data=body, headers=headers)
            self.answers.append((answer.status_code, answer.get_json()))

        self._start(send)

    def call(self, fn) -> None:
        def run():
            with self.app.app_context():
                try:
                    fn()
                except BaseException as exc:  # noqa: BLE001 - the test looks at it
                    self.errors.append(exc)

        self._start(run)

    def _start(self, target) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self.threads.append(thread)
        thread.start()

    def wait_for_group(self, size: int) -> None:
        deadline = time.monotonic() + 10
        while len(self.lane.waiting) < size:
            assert time.monotonic() < deadline, f"only {len(self.lane.waiting)} waiting"
            time.sleep(0.005)

    def finish(self) -> None:
        for thread in self.threads:
            thread.join(timeout=20)
            assert not thread.is_alive()


@pytest.fixture
def inserts(app):
    """The INSERT statements into inbound_events: intake runs them in autocommit, so each
    statement is one transaction and one commit."""
    seen: list[int] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO INBOUND_EVENTS"):
            seen.append(1)

    engine = intake_engine()
    event.listen(engine, "before_cursor_execute", before)
    yield seen
    event.remove(engine, "before_cursor_execute", before)


def queued_ids() -> list[str]:
    return get_queue(INBOUND).get_job_ids()


def test_webhooks_waiting_together_share_one_commit_and_are_answered_after_it(
    app, owner, inserts, run_jobs
):
    url = hook_url()
    senders = Senders(app)
    with senders.lane.hold_all():  # the writer is busy: these five wait for the next group
        for n in range(5):
            senders.post(url, *signed_webhook("order.taken", f"ord_{n}", msg_id=f"msg_{n}"))
        senders.wait_for_group(5)
        time.sleep(0.05)
        assert senders.answers == []  # nobody answered before their rows were committed
        assert inserts == []
    senders.finish()

    assert sorted(code for code, _ in senders.answers) == [202] * 5
    assert len(inserts) == 1  # one statement, one commit, for the five
    rows = db.session.query(InboundEvent).order_by(InboundEvent.id).all()
    assert sorted(r.event_id for r in rows) == [f"msg_{n}" for n in range(5)]
    assert {body["id"] for _, body in senders.answers} == {r.id for r in rows}
    assert all(r.status == "received" and r.received_at is not None for r in rows)
    assert sorted(queued_ids()) == sorted(f"inbound-{r.id}" for r in rows)

    run_jobs()  # the jobs queued in one round trip are ordinary RQ jobs a worker runs
    db.session.expire_all()
    # each was applied: its order is not one of ours yet, so it waits for the dispatch
    errors = {r.event_id: r.error for r in db.session.query(InboundEvent)}
    assert errors == {
        f"msg_{n}": f"waiting: no dispatch for sandbox order ord_{n} yet" for n in range(5)
    }


def test_two_deliveries_of_one_event_in_one_group_store_it_once(app, owner, inserts):
    url = hook_url()
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="msg_same")
    senders = Senders(app)
    with senders.lane.hold_all():
        senders.post(url, headers, body)
        senders.post(url, headers, body)
        senders.wait_for_group(2)
    senders.finish()

    assert sorted(code for code, _ in senders.answers) == [200, 202]
    assert {body["status"] for _, body in senders.answers} == {"accepted", "duplicate"}
    rows = db.session.query(InboundEvent).all()
    assert len(rows) == 1
    assert queued_ids() == [f"inbound-{rows[0].id}"]


def test_a_row_the_database_refuses_fails_only_its_own_request(app, owner):
    url = hook_url()
    connection = db.session.scalars(select(Connection)).one()
    guard = (connection.version, connection.webhook_path)
    senders = Senders(app)
    bad = {"adapter": "sandbox", "connection_id": connection.id, "event_id": "bad",
           "headers": {}, "body": None, "status": "received", "error": None}  # fmt: skip
    db.session.commit()
    with senders.lane.hold_all():
        senders.post(url, *signed_webhook("order.taken", "ord_1", msg_id="good_1"))
        # body may not be NULL
        senders.call(lambda: group_commit.store(bad, enqueue=True, guard=guard))
        senders.post(url, *signed_webhook("order.taken", "ord_2", msg_id="good_2"))
        senders.wait_for_group(3)
    senders.finish()

    assert [code for code, _ in senders.answers] == [202, 202]
    assert len(senders.errors) == 1 and isinstance(senders.errors[0], IntegrityError)
    assert sorted(r.event_id for r in db.session.query(InboundEvent)) == ["good_1", "good_2"]
    assert len(queued_ids()) == 2


def test_a_lone_webhook_is_stored_in_a_group_of_its_own(app, owner, client, inserts):
    url = hook_url()
    db.session.commit()
    inserts.clear()
    headers, body = signed_webhook("order.taken", "ord_1", msg_id="alone")
    assert client.post(url, data=body, headers=headers).status_code == 202
    assert len(inserts) == 1
    assert [r.event_id for r in db.session.query(InboundEvent)] == ["alone"]
    assert group_commit._lane(app).waiting == []


def test_enqueue_many_once_leaves_a_queued_job_alone_and_replaces_a_finished_one(app):
    task = "dispatcher.inbound.apply.apply_inbound"
    assert enqueue_many_once(INBOUND, task, [("inbound-1", (1,)), ("inbound-2", (2,))]) == 2
    queue = get_queue(INBOUND)
    queue.fetch_job("inbound-2").set_status("finished")
    queue.remove("inbound-2")
    # inbound-1 still queued: left alone; inbound-2 finished: queued again; inbound-3 new
    pushed = enqueue_many_once(
        INBOUND, task, [("inbound-1", (1,)), ("inbound-2", (2,)), ("inbound-3", (3,))]
    )
    assert pushed == 2  # inbound-3 by the one round trip, inbound-2 replaced after it
    assert sorted(queue.get_job_ids()) == ["inbound-1", "inbound-2", "inbound-3"]
    job = queue.fetch_job("inbound-3")
    assert (job.func_name, job.args, job.get_status()) == (task, (3,), "queued")


def test_postgresql_writes_a_second_group_while_one_is_being_written(app, owner):
    """Issue 12: off SQLite a process does not queue every webhook behind one group's round
    trips; SQLite keeps one writer (a second group would only wait for its lock)."""
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: the other tests hold it")
    url = hook_url()
    db.session.commit()
    senders = Senders(app)
    senders.lane.writer.acquire()  # a group that is being written
    try:
        senders.post(url, *signed_webhook("order.taken", "ord_1", msg_id="meanwhile"))
        senders.finish()
    finally:
        senders.lane.writer.release()
    assert [code for code, _ in senders.answers] == [202]
