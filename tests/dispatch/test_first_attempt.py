"""A lone dispatch's first attempt is leased by the owner's request (first_attempt.py): its
task sends without a claim, and everything the claim guaranteed still holds."""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests
from fakes.sandbox_fixture import sandbox_account
from rq import Retry

from dispatch.helpers import delegated, note_early_tasks, race, statements
from dispatcher import reconcile
from dispatcher.dispatch import (
    backoff,
    cancel,
    carried,
    channels,
    first_attempt,
    send,
    send_batch,
    service,
)
from dispatcher.extensions import db
from dispatcher.lifecycle import Status
from dispatcher.models import Dispatch, DispatchState, MicroJob
from dispatcher.models._base import utcnow
from dispatcher.planning import tree
from dispatcher.queues import DISPATCH, get_queue, redis_connection

CHILD = Path(__file__).with_name("send_child.py")


def row(dispatch_id: int) -> Dispatch:
    db.session.expire_all()
    return db.session.get(Dispatch, dispatch_id)


def orders_for(sandbox, dispatch_id: int) -> int:
    return sandbox.stats()["orders_by_key"].get(row(dispatch_id).idempotency_key, 0)


def has_token(dispatch_id: int) -> bool:
    return bool(redis_connection().exists(first_attempt.token_key(dispatch_id)))


def run_out(dispatch_id: int) -> None:
    """Let the lease run out (the tests do not wait for the clock)."""
    dispatch = row(dispatch_id)
    dispatch.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def put_off(dispatch_ids: list[int], by: timedelta) -> None:
    """Move the leases and the tokens of these dispatches `by` later, the two together (the
    token still ends a task timeout before its lease): on a loaded machine, setting up a race
    of two processes can outlast a token's 15 s, and the race is about who takes a token, not
    about what happens when none is left."""
    db.session.expire_all()
    for dispatch_id in dispatch_ids:
        db.session.get(Dispatch, dispatch_id).next_attempt_at += by
        redis_connection().pexpire(
            first_attempt.token_key(dispatch_id),
            redis_connection().pttl(first_attempt.token_key(dispatch_id))
            + int(by.total_seconds() * 1000),
        )
    db.session.commit()


def test_the_request_leases_the_first_attempt_and_leaves_one_token(app, goal, paused):
    settings = app.config["SETTINGS"]
    before = utcnow()
    dispatch_id = service.dispatch_job(delegated(goal)).id
    dispatch = row(dispatch_id)
    assert dispatch.state == DispatchState.PENDING and dispatch.attempts == 1
    lease = backoff.lease(settings)
    assert before + lease - timedelta(seconds=2) < dispatch.next_attempt_at < utcnow() + lease
    ttl = redis_connection().pttl(first_attempt.token_key(dispatch_id)) / 1000
    # a task that takes the token has a whole task timeout of lease left
    room = (lease - timedelta(seconds=backoff.call_timeout(settings))).total_seconds()
    assert room - 5 < ttl <= room
    assert get_queue(DISPATCH).job_ids == [send.send_job_id(dispatch_id)]


def test_the_task_calls_the_platform_before_any_statement(goal, paused, run_jobs):
    """The token carries the call (carried.py): up to the platform call the task sends no
    statement at all (this process's adapter was built from the connection's version the
    request saw), then reads the dispatch once to record the placement. It fails on the
    read path (a SELECT before the call) and on the claim path (an UPDATE)."""
    job_id = delegated(goal).id
    dispatch_id = service.dispatch_job(db.session.get(MicroJob, job_id)).id
    db.session.remove()
    with calls_counted() as (seen, calls):
        assert run_jobs() == 1  # the real worker, through RQ
    assert seen["sql"][: calls[0]] == []
    assert seen["sql"][calls[0]].startswith("SELECT")  # after the call: what to record
    dispatch = row(dispatch_id)
    assert dispatch.state == DispatchState.PLACED and dispatch.attempts == 1
    assert orders_for(paused, dispatch_id) == 1
    assert db.session.get(MicroJob, job_id).status == Status.DISPATCHED
    assert not has_token(dispatch_id)


@contextmanager
def calls_counted():
    """The statements sent meanwhile, and how many had been sent at each platform call."""
    calls: list[int] = []
    original = send._call

    def counting(*args, **kwargs):
        calls.append(len(seen["sql"]))
        return original(*args, **kwargs)

    send._call = counting
    try:
        with statements() as seen:
            yield seen, calls
    finally:
        send._call = original


def sent(sandbox, dispatch_id: int) -> dict:
    """The order the sandbox holds for a dispatch, as its API shows it."""
    key = row(dispatch_id).idempotency_key
    (order,) = sandbox.market.find_orders(key)
    return order


#: what an order says about the job (its own ids, key and times aside)
WHAT = ("title", "brief", "acceptance_criteria", "deliverable_kind", "price_cents",
        "currency", "assignments", "callback_url", "due_date")  # fmt: skip


def test_the_carried_call_is_the_call_a_read_would_make(goal, paused, run_jobs):
    """Two jobs alike, one sent with what its token carries, one through the read path (a
    token from an older release): the platform is told the same. Also the carried spec is
    the one `job_spec` builds from the rows. It fails if the request's copy of the spec
    drifts from the worker's (another count, text version, callback or date)."""
    fields = dict(
        brief="A guest post on caching", price=2500, due_date=date(2031, 5, 17),
        acceptance_criteria=["1500 words", "two links"], deliverable_kind="url",
    )  # fmt: skip
    carried_id = service.dispatch_job(delegated(goal, title="post", **fields)).id
    read_id = service.dispatch_job(delegated(goal, title="post", **fields)).id
    token = redis_connection().get(first_attempt.token_key(carried_id))
    call = carried.decode(token)
    assert call is not None and call.key == row(carried_id).idempotency_key
    loaded = send_batch.preload_leased(carried_id)
    assert call.spec == channels.job_spec(loaded[0].job, loaded[0])
    db.session.rollback()
    redis_connection().set(first_attempt.token_key(read_id), "1", keepttl=True)
    db.session.remove()
    with calls_counted() as (seen, calls):
        assert run_jobs() == 2
    assert len(calls) == 2 and seen["sql"][: calls[0]] == []
    assert seen["sql"][calls[0] : calls[1]], "the read path read before its call"
    one, other = sent(paused, carried_id), sent(paused, read_id)
    assert {k: one[k] for k in WHAT} == {k: other[k] for k in WHAT}
    assert one["title"] == "post" and one["due_date"] == "2031-05-17"
    assert one["acceptance_criteria"] == ["1500 words", "two links"]
    assert one["client_ref"] == f"job-{row(carried_id).job_id}"


def test_a_connection_changed_after_the_request_is_not_called_with_its_old_credentials(
    owner, goal, paused, run_jobs
):
    """The owner replaces the API key after dispatching and before the task runs: the
    token carries the version the request saw, this process holds an adapter built with the
    old key, and the change announced the new version, so the task builds the adapter again
    from the database. It fails if the token's version is trusted on its own."""
    from dispatcher import connections

    dispatch_id = service.dispatch_job(delegated(goal)).id
    connection = connections.for_owner(owner.id)[0]
    old_key = connection.credentials["api_key"]
    new_key = sandbox_account(paused.base_url, name="the new account")
    connections.change(connection, credentials={"api_key": new_key})
    db.session.commit()
    db.session.remove()
    assert run_jobs() == 1
    assert row(dispatch_id).state == DispatchState.PLACED
    key = row(dispatch_id).idempotency_key
    assert orders_seen_by(paused.base_url, new_key, key) == 1
    assert orders_seen_by(paused.base_url, old_key, key) == 0


def orders_seen_by(base_url: str, api_key: str, idempotency_key: str) -> int:
    """How many orders with that key the account of `api_key` holds."""
    response = requests.get(
        f"{base_url}/orders",
        params={"idempotency_key": idempotency_key},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=5,
    )
    response.raise_for_status()
    return len(response.json()["orders"])


@pytest.mark.parametrize(
    "value", ["1", "7;{not json", "7;sandbox;" + json.dumps({"f": 99, "a": "sandbox"})]
)
def test_a_token_that_carries_no_readable_call_falls_back_to_reading(goal, paused, run_jobs, value):
    """A token from an older release ("1"), a damaged one, one of another format: the task
    still holds the first attempt and reads the dispatch before calling (one SELECT, no
    claim), and places it once. It fails if an unreadable token is dropped or raises."""
    dispatch_id = service.dispatch_job(delegated(goal)).id
    redis_connection().set(first_attempt.token_key(dispatch_id), value, keepttl=True)
    db.session.remove()
    with calls_counted() as (seen, calls):
        assert run_jobs() == 1
    before_call = seen["sql"][: calls[0]]
    assert len(before_call) == 1 and before_call[0].startswith("SELECT"), before_call
    dispatch = row(dispatch_id)
    assert dispatch.state == DispatchState.PLACED and dispatch.attempts == 1
    assert orders_for(paused, dispatch_id) == 1


def test_a_second_run_of_the_task_finds_no_token_and_waits_for_the_lease(goal, paused):
    """A worker takes the token, the platform makes the order, the worker dies before it
    records it. RQ runs the task again: the lease still holds, so it waits; once the lease
    runs out it counts a second attempt, looks the key up and adopts the order."""
    job = delegated(goal)
    dispatch_id = service.dispatch_job(job).id
    assert first_attempt.take(dispatch_id)  # the first run takes the token...
    held = row(dispatch_id)
    send_batch_rows = send_batch.preload_leased(dispatch_id)
    adapter = channels.guarded_adapter(held)
    adapter.dispatch(channels.job_spec(send_batch_rows[0].job, held), held.idempotency_key)
    db.session.rollback()  # ...calls out and dies

    retried = send.send_dispatch(dispatch_id)
    assert isinstance(retried, Retry)
    assert orders_for(paused, dispatch_id) == 1
    run_out(dispatch_id)
    assert send.send_dispatch(dispatch_id) == "adopted"
    dispatch = row(dispatch_id)
    assert dispatch.attempts == 2 and dispatch.state == DispatchState.PLACED
    assert paused.stats()["orders"] == 1


def test_a_cancel_before_any_task_ran_owes_the_platform_nothing(goal, paused):
    job = delegated(goal)
    dispatch_id = service.dispatch_job(job).id
    note = service.cancel_job(db.session.get(MicroJob, job.id))
    assert note == ""
    dispatch = row(dispatch_id)
    assert dispatch.state == DispatchState.CANCELLED
    assert dispatch.attempts == 0 and dispatch.next_attempt_at is None  # no cancel owed
    assert not has_token(dispatch_id)
    assert reconcile.reconcile()["cancels"] == 0
    assert send.send_dispatch(dispatch_id) == "skipped: cancelled"
    assert paused.stats()["orders"] == 0


def test_a_cancel_while_the_leased_attempt_is_out_owes_a_cancel(goal, paused):
    """The token is taken (a worker is mid-call): the cancel cannot know whether the order
    exists, so the platform is owed a look-up and a cancel, and the order made is cancelled."""
    job = delegated(goal)
    dispatch_id = service.dispatch_job(job).id
    assert first_attempt.take(dispatch_id)
    held = send_batch.preload_leased(dispatch_id)[0]
    spec, key = channels.job_spec(held.job, held), held.idempotency_key
    db.session.rollback()
    note = service.cancel_job(db.session.get(MicroJob, job.id))
    assert "being cancelled" in note
    assert row(dispatch_id).next_attempt_at is not None  # a cancel is owed
    receipt = channels.guarded_adapter(held).dispatch(spec, key)  # the call lands after
    outcome = send._placed(row(dispatch_id), receipt, False)
    assert outcome == "placed after it was cancelled: cancelling"
    assert cancel.cancel_at_platform(dispatch_id) == "cancelled at the platform"
    assert paused.market.get_order(receipt.external_id)["status"] == "cancelled"


def test_without_the_hand_over_the_reconciler_and_the_lease_still_place_it_once(goal, paused):
    """Redis failed after the commit: no token and no task. The reconciler queues the task;
    it waits for the lease, then claims a second attempt (looking the key up) and places."""
    dispatch_id = service.dispatch_job(delegated(goal)).id
    conn = redis_connection()
    conn.delete(first_attempt.token_key(dispatch_id))
    get_queue(DISPATCH).empty()
    assert reconcile.reconcile()["dispatches"] == 1
    assert isinstance(send.send_dispatch(dispatch_id), Retry)  # the request's lease holds
    run_out(dispatch_id)
    assert send.send_dispatch(dispatch_id) == "placed"
    dispatch = row(dispatch_id)
    assert dispatch.attempts == 2 and orders_for(paused, dispatch_id) == 1


def test_a_hand_over_that_fails_is_logged_and_the_dispatch_kept(app, goal, paused, caplog):
    from redis.exceptions import ConnectionError

    conn = redis_connection()
    original = conn.pipeline

    def down(*args, **kwargs):
        pipe = original(*args, **kwargs)

        def execute(*_args, **_kwargs):
            raise ConnectionError("Redis is down")

        pipe.execute = execute
        return pipe

    conn.pipeline = down
    try:
        with caplog.at_level(logging.WARNING, logger="dispatcher.dispatch.first_attempt"):
            dispatch_id = service.dispatch_job(delegated(goal)).id
    finally:
        conn.pipeline = original
    assert "the reconciler will" in caplog.text
    dispatch = row(dispatch_id)
    assert dispatch.state == DispatchState.PENDING and dispatch.attempts == 1
    assert not has_token(dispatch_id)


def test_many_dispatched_at_once_are_staged_for_the_batch_claim(goal, paused):
    """dispatch_goal stages many: no first lease and no token, so their tasks claim them
    in batches (send_batch.py), as the drain needs."""
    for i in range(3):
        delegated(goal, title=f"job {i}", price=500)
    dispatches = service.dispatch_goal(goal)
    ids = [d.id for d in dispatches]
    assert [(row(i).attempts, row(i).next_attempt_at) for i in ids] == [(0, None)] * 3
    assert not any(has_token(i) for i in ids)


def test_two_workers_racing_on_leased_dispatches_place_each_once(
    app, owner, app_config, sandbox, tmp_path
):
    """Two workers run every leased dispatch's task at once (a copy queued by the
    reconciler meets the request's): whoever takes a token sends; the other finds the lease
    held and waits. One order per dispatch, on its first attempt."""
    sandbox.control(pause_workers=True)
    goal = tree.create_goal(owner.id, title="many", budget_cents=10**7)
    ids = [service.dispatch_job(delegated(goal, title=f"job {i}", price=500)).id
           for i in range(24)]  # fmt: skip
    leases = {i: row(i).next_attempt_at for i in ids}
    put_off(ids, timedelta(minutes=2))
    assert all(row(i).next_attempt_at - leases[i] == timedelta(minutes=2) for i in ids)
    db.session.remove()
    orders = [ids, ids[::-1]]
    specs = [{"sandbox_url": sandbox.base_url, "batch": 8, "dispatch_ids": o} for o in orders]
    results = [r["outcomes"] for r in race(CHILD, app, app_config, tmp_path, specs)]
    # the race was real: each worker met dispatches the other held or had placed
    assert all(set(r.values()) - {"placed"} for r in results), results
    stats = sandbox.stats()["orders_by_key"]
    for dispatch_id in ids:
        d = row(dispatch_id)
        assert d.state == DispatchState.PLACED and d.attempts == 1
        assert stats.get(d.idempotency_key) == 1


def test_the_breaker_is_read_with_the_token(goal, paused, monkeypatch):
    """The token's round trip also reads the channel's breaker, so a closed, healthy one
    costs no further Redis command before the call. It fails if the breaker asks Redis
    again (its HMGET) on the carried path."""
    from redis import Redis

    dispatch_id = service.dispatch_job(delegated(goal)).id
    asked: list[tuple] = []
    original = Redis.hmget

    def hmget(self, *args, **kwargs):
        asked.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Redis, "hmget", hmget)
    assert send.send_dispatch(dispatch_id) == "placed"
    assert asked == []
    assert orders_for(paused, dispatch_id) == 1


# -- the task queued before the commit (first_attempt.queue_early) ---------------------------
def test_the_task_is_queued_before_the_commit_and_its_token_left_after(goal, paused):
    """The worker can take the task up while the commit is made durable: at the commit the
    task (marked to wait) is already queued and the token not yet left; after it, the token
    is there. It fails if the task is queued after the commit, or the token before it."""
    from sqlalchemy import event

    seen: list[tuple] = []

    def at_commit(session) -> None:
        queued = get_queue(DISPATCH).jobs
        tokens = [has_token(int(j.id.removeprefix("dispatch-"))) for j in queued]
        seen.append(([(j.id, j.args) for j in queued], tokens))

    job = delegated(goal)
    event.listen(db.session(), "before_commit", at_commit)
    try:
        dispatch_id = service.dispatch_job(job).id
    finally:
        event.remove(db.session(), "before_commit", at_commit)
    assert seen == [([(send.send_job_id(dispatch_id), (dispatch_id, True))], [False])]
    assert has_token(dispatch_id)
    assert get_queue(DISPATCH).job_ids == [send.send_job_id(dispatch_id)]


def take_token_aside(dispatch_id: int) -> first_attempt.Lease:
    """Undo the hand-over (as if the request were still committing): the token is taken
    out, and what it held returned, to be handed over again later."""
    value = redis_connection().getdel(first_attempt.token_key(dispatch_id))
    assert value is not None
    assert redis_connection().delete(first_attempt.ready_key(dispatch_id)) == 1  # its wake-up
    until = row(dispatch_id).next_attempt_at
    db.session.rollback()
    return first_attempt.Lease(dispatch_id, until, value.decode())


def run_in_thread(app, dispatch_id: int, early: bool) -> tuple[threading.Thread, dict]:
    """send_dispatch in another thread (as a worker would), timing it."""
    done: dict = {}

    def task() -> None:
        with app.app_context():
            started = time.monotonic()
            done["outcome"] = send.send_dispatch(dispatch_id, early)
            done["at"], done["took"] = time.monotonic(), time.monotonic() - started
            db.session.remove()

    thread = threading.Thread(target=task)
    thread.start()
    return thread, done


def test_a_task_queued_early_waits_for_its_token_and_is_woken_by_the_hand_over(app, goal, paused):
    """The task runs before the request's hand-over: it waits (no claim, no Retry), and the
    hand-over's wake-up sends it on at once, holding the first attempt. It fails if the
    task does not wait (it would find the lease held and come back when it runs out), or
    waits for its timeout instead of being woken."""
    dispatch_id = service.dispatch_job(delegated(goal)).id
    first = take_token_aside(dispatch_id)
    thread, done = run_in_thread(app, dispatch_id, early=True)
    time.sleep(0.3)
    assert thread.is_alive() and orders_for(paused, dispatch_id) == 0  # waiting
    db.session.rollback()
    handed = time.monotonic()
    first_attempt.hand_over(first, queued=True)
    thread.join(timeout=10)
    assert done["outcome"] == "placed"
    assert done["at"] - handed < first_attempt.WAIT_SECONDS / 2, "woken, not timed out"
    dispatch = row(dispatch_id)
    assert dispatch.state == DispatchState.PLACED and dispatch.attempts == 1
    assert orders_for(paused, dispatch_id) == 1
    assert not has_token(dispatch_id)


def test_a_task_queued_early_whose_token_never_comes_claims_when_the_lease_runs_out(
    app, goal, paused
):
    """The request died between its commit and the hand-over: the task waits its while,
    then goes on as a run without a token (the lease holds: it comes back); once the lease
    runs out it claims a second attempt and places the order once."""
    dispatch_id = service.dispatch_job(delegated(goal)).id
    take_token_aside(dispatch_id)
    started = time.monotonic()
    outcome = send.send_dispatch(dispatch_id, True)
    took = time.monotonic() - started
    assert isinstance(outcome, Retry)
    assert first_attempt.WAIT_SECONDS * 0.9 <= took < first_attempt.WAIT_SECONDS + 3
    assert orders_for(paused, dispatch_id) == 0
    run_out(dispatch_id)
    assert send.send_dispatch(dispatch_id) == "placed"
    dispatch = row(dispatch_id)
    assert dispatch.attempts == 2 and orders_for(paused, dispatch_id) == 1


def test_a_task_queued_early_whose_request_failed_is_woken_and_finds_nothing(
    app, goal, paused, monkeypatch
):
    """The database fails at the request's commit (on PostgreSQL the commit rides the
    request's write: request_folds.scalar_and_commit) after its task was queued: no token
    will come and no dispatch exists, so the request takes the task back out of the queue,
    and wakes a run a worker had already taken, which ends as gone at once, having called
    no platform. It fails if the task is left queued, or left to wait its while."""
    from dispatcher.dispatch import request_folds

    def fails(*args, **kwargs):
        raise RuntimeError("the database went away at the commit")

    job = delegated(goal)
    queued = note_early_tasks(monkeypatch)
    monkeypatch.setattr(db.session, "commit", fails)
    monkeypatch.setattr(request_folds, "scalar_and_commit", fails)
    with pytest.raises(RuntimeError):
        service.dispatch_job(job)
    monkeypatch.undo()
    db.session.rollback()
    (dispatch_id,) = queued
    assert db.session.get(Dispatch, dispatch_id) is None
    assert get_queue(DISPATCH).count == 0  # taken back: no worker had it yet
    started = time.monotonic()  # a worker that had taken it
    assert send.send_dispatch(dispatch_id, True) == "gone"
    assert time.monotonic() - started < first_attempt.WAIT_SECONDS / 2, "woken, not timed out"
    assert paused.stats()["orders"] == 0


def test_a_run_not_queued_early_does_not_wait(app, goal, paused):
    """A reconciler's copy, a crash retry of a claim: without the early mark a missing token
    means another run holds the attempt, and the task comes back when the lease runs out,
    at once. It fails if every run without a token waits for one."""
    dispatch_id = service.dispatch_job(delegated(goal)).id
    take_token_aside(dispatch_id)
    started = time.monotonic()
    assert isinstance(send.send_dispatch(dispatch_id), Retry)
    assert time.monotonic() - started < first_attempt.WAIT_SECONDS / 2
