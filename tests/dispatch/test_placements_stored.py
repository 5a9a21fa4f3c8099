"""Issue 12 (PostgreSQL drain): a batch's placements are recorded in a few statements for all
of them. What they store must be what placing them one by one stored: every dispatch, job,
place and Event row is checked here field by field, with an owner's edit and an owner's
cancel landing between the claim and the placement (each must still be seen)."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import select, update

from adapters.base import Receipt
from dispatch.helpers import delegated, staged
from dispatcher.dispatch import send_batch, service
from dispatcher.extensions import db
from dispatcher.lifecycle import DISPATCH
from dispatcher.models import Assignment, Connection, Dispatch, Event, MicroJob
from dispatcher.models._base import utcnow

#: the columns compared (ids, keys and times are checked apart)
DISPATCH_FIELDS = ("adapter", "state", "amount_cents", "currency", "external_id",
                   "external_url", "attempts", "last_error", "next_attempt_at", "expires_at",
                   "job_version")  # fmt: skip
PLACE_FIELDS = ("position", "status", "external_ref", "worker_ref", "person_id", "price_cents",
                "fee_cents", "held_cents", "paid_cents")  # fmt: skip
EVENT_FIELDS = ("kind", "from_status", "to_status", "actor", "data")


def elsewhere(app, work) -> None:
    """Run `work` in another session and transaction, committed before we go on (another
    process: the owner's browser, say)."""
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
                errors.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def fields(row, names) -> dict:
    return {name: getattr(row, name) for name in names}


def test_a_batch_stores_what_one_by_one_placing_stored(app, goal, sandbox):
    sandbox.control(pause_workers=True)
    one = delegated(goal, title="one", price=500)
    two = delegated(goal, title="two", price=700, assignments=2)
    gone = delegated(goal, title="gone", price=300)
    found = delegated(goal, title="found", price=400)
    jobs = [one, two, gone, found]
    ids = [staged(job).id for job in jobs]
    job_ids = [job.id for job in jobs]
    keys = [db.session.get(Dispatch, i).idempotency_key for i in ids]
    connection_id = db.session.scalars(select(Connection.id)).one()
    owner_id, goal_id = goal.owner_id, goal.id
    db.session.remove()

    # a worker claims all four and calls out...
    claimed = send_batch.claim(ids[0], 16)
    assert sorted(d.id for d in claimed) == ids
    send_batch.commit_keeping(send_batch.preload(claimed))
    by_id = {d.id: d for d in claimed}

    # ...meanwhile the owner edits one job and cancels another (committed elsewhere)
    def edit() -> None:
        db.session.execute(
            update(MicroJob).where(MicroJob.id == job_ids[0]).values(title="one, edited")
        )
        db.session.commit()

    elsewhere(app, edit)
    elsewhere(app, lambda: service.cancel_job(db.session.get(MicroJob, job_ids[2])))
    t0 = utcnow()
    last_event = db.session.scalar(select(db.func.max(Event.id)))
    receipts = [
        Receipt("ord_one", "https://sandbox.test/o/ord_one"),
        Receipt("ord_two", ""),
        Receipt("ord_gone", "https://sandbox.test/o/ord_gone"),
        Receipt("ord_found", "https://sandbox.test/o/ord_found"),
    ]
    outcomes = send_batch.record_placed(
        [(by_id[ids[i]], receipts[i], i == 3) for i in (3, 1, 0, 2)]  # any order
    )
    t1 = utcnow()
    db.session.remove()

    assert outcomes == {
        ids[0]: "placed",
        ids[1]: "placed",
        ids[2]: "placed after it was cancelled: cancelling",
        ids[3]: "adopted",
    }
    db.session.expire_all()
    dispatches = [db.session.get(Dispatch, i) for i in ids]
    placed = {"adapter": "sandbox", "state": "placed", "currency": "USD", "attempts": 1,
              "last_error": None, "next_attempt_at": None, "expires_at": None,
              "job_version": 1}  # fmt: skip
    assert [fields(d, DISPATCH_FIELDS) for d in dispatches] == [
        {**placed, "amount_cents": 500, "external_id": "ord_one",
         "external_url": "https://sandbox.test/o/ord_one"},
        {**placed, "amount_cents": 1400, "external_id": "ord_two", "external_url": None},
        {**placed, "state": "cancelled", "amount_cents": 300, "external_id": "ord_gone",
         "external_url": "https://sandbox.test/o/ord_gone",
         "next_attempt_at": dispatches[2].next_attempt_at},  # a cancel owed: checked below
        {**placed, "amount_cents": 400, "external_id": "ord_found",
         "external_url": "https://sandbox.test/o/ord_found"},
    ]  # fmt: skip
    assert [d.job_id for d in dispatches] == job_ids
    assert [d.connection_id for d in dispatches] == [connection_id] * 4
    assert [d.idempotency_key for d in dispatches] == keys
    for d in (dispatches[0], dispatches[1], dispatches[3]):
        assert t0 <= d.placed_at <= t1
    assert dispatches[2].placed_at is None
    assert t0 <= dispatches[2].next_attempt_at <= utcnow()  # due: the cancel task takes it

    rows = [db.session.get(MicroJob, i) for i in job_ids]
    assert [(j.title, j.status, j.version, j.finished_at) for j in rows] == [
        ("one, edited", "dispatched", 1, None),  # the owner's edit is kept
        ("two", "dispatched", 1, None),
        ("gone", "cancelled", 1, None),  # the owner's cancel is kept
        ("found", "dispatched", 1, None),
    ]
    for job in (rows[0], rows[1], rows[3]):
        assert t0 <= job.updated_at <= t1

    places = list(db.session.scalars(select(Assignment).order_by(Assignment.id)))
    base = {"external_ref": None, "worker_ref": "", "person_id": None, "fee_cents": 0,
            "paid_cents": 0}  # fmt: skip
    assert [(p.dispatch_id, p.job_id, fields(p, PLACE_FIELDS)) for p in places] == [
        (ids[0], job_ids[0], {**base, "position": 1, "status": "open", "price_cents": 500,
                              "held_cents": 500}),
        (ids[1], job_ids[1], {**base, "position": 1, "status": "open", "price_cents": 700,
                              "held_cents": 700}),
        (ids[1], job_ids[1], {**base, "position": 2, "status": "open", "price_cents": 700,
                              "held_cents": 700}),
        (ids[2], job_ids[2], {**base, "position": 1, "status": "cancelled",
                              "price_cents": 300, "held_cents": 0}),
        (ids[3], job_ids[3], {**base, "position": 1, "status": "open", "price_cents": 400,
                              "held_cents": 400}),
    ]  # fmt: skip

    events = list(db.session.scalars(select(Event).where(Event.id > last_event).order_by(Event.id)))
    actor = "adapter:sandbox"

    def pair(n: int, external_id: str, adopted: bool) -> list[tuple]:
        data = {"dispatch_id": ids[n], "external_id": external_id, "attempts": 1,
                "adopted": adopted}  # fmt: skip
        return [
            (job_ids[n], {"kind": "dispatch.place", "from_status": "pending",
                          "to_status": "placed", "actor": actor, "data": data}),
            (job_ids[n], {"kind": "dispatched", "from_status": "queued",
                          "to_status": "dispatched", "actor": actor, "data": data}),
        ]  # fmt: skip

    # in job order, each placement's Event followed by its job's move; none for the cancelled
    assert [(e.job_id, fields(e, EVENT_FIELDS)) for e in events] == [
        *pair(0, "ord_one", False),
        *pair(1, "ord_two", False),
        *pair(3, "ord_found", True),
    ]
    for e in events:
        assert (e.owner_id, e.goal_id) == (owner_id, goal_id)
        assert t0 <= e.created_at <= t1
    assert isinstance(events[0].created_at, datetime)


def test_a_set_based_move_checks_each_rows_state(goal, sandbox):
    sandbox.control(pause_workers=True)
    ids = [service.dispatch_job(delegated(goal, title=f"j{i}", price=100)).id for i in range(3)]
    service.cancel_job(db.session.get(Dispatch, ids[1]).job)
    first = {ids[0]: {"external_id": "ord_a"}}
    assert DISPATCH.guarded_update_many(Dispatch, first, "place") == {ids[0]}
    every = {i: {"external_id": f"ord_{n}"} for n, i in enumerate(ids)}
    assert DISPATCH.guarded_update_many(Dispatch, every, "place", last_error="x") == {ids[2]}
    db.session.commit()
    db.session.expire_all()
    rows = [db.session.get(Dispatch, i) for i in ids]
    assert [(d.state, d.external_id, d.last_error) for d in rows] == [
        ("placed", "ord_a", None),  # placed already: left as it was
        ("cancelled", None, None),  # not a state "place" starts from
        ("placed", "ord_2", "x"),
    ]
