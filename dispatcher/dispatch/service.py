"""Handing delegated jobs to their channels: stage, reserve, commit, then enqueue.

The Dispatch row is the staged job (RQ-NOTES: stage and drain). It is written, with the budget
reservation and the job's transition, in one transaction; only then is the send task enqueued.
If the process dies in between, the reconciler finds the pending row and enqueues it. A lone
dispatch also gets its first attempt's lease in that transaction (first_attempt.py), so its
task calls the platform without a claim of its own; its task is queued just before the
commit and waits for the token the request leaves after it.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Callable

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from adapters.base import Adapter, Capability
from dispatcher import connections, lifecycle
from dispatcher.dispatch import first_attempt, places, request_writes, send
from dispatcher.dispatch.cancel import enqueue_cancel, owe_cancel
from dispatcher.dispatch.request_reads import lock_and_read
from dispatcher.errors import ConfigurationError, InvalidChange, InvalidTransition, NotFound
from dispatcher.extensions import db
from dispatcher.lifecycle import DELIVERY, DISPATCH, DeliveryState, Status
from dispatcher.lifecycle.dispatch import OPEN as OPEN_ORDER
from dispatcher.live import publish as live_publish
from dispatcher.locking import lock_job
from dispatcher.models import Dispatch, DispatchState, Goal, MicroJob
from dispatcher.queues import enqueue_quietly

log = logging.getLogger(__name__)

DISPATCHABLE = frozenset({Status.DRAFT, Status.READY})
REDISPATCHABLE = frozenset({Status.REJECTED, Status.FAILED, Status.EXPIRED, Status.CANCELLED})


def new_idempotency_key() -> str:
    return f"dsp_{secrets.token_hex(16)}"


def check_delegable(job: MicroJob, goal: Goal) -> Adapter:
    """Raise unless the job can go to its channel; return the adapter."""
    if job.children:
        raise InvalidTransition(job.id, job.status, "dispatch", ["dispatch its leaves instead"])
    if job.mode != "delegate" or not job.channel:
        raise InvalidTransition(
            job.id, job.status, "dispatch", ["mark it delegate and pick a channel first"]
        )
    try:
        connection = connections.require(job)
        adapter = connections.adapter_for_connection(connection.id)
    except (ConfigurationError, NotFound) as exc:
        raise InvalidTransition(job.id, job.status, "dispatch", [str(exc)]) from None
    if goal.personal and adapter.paid:
        raise InvalidTransition(
            job.id, job.status, "dispatch", ["personal goals never go to paid channels"]
        )
    if adapter.paid and not job.price_cents and not job.free:
        raise InvalidChange(
            "price_cents",
            f"“{job.title}” has no price and {job.channel} is a paid channel: set a price, "
            "or mark the job free if it really pays nothing",
        )
    check_capabilities(job, adapter)
    if adapter.teammate:
        check_teammate(job, adapter)
    return adapter


def check_teammate(job: MicroJob, adapter: Adapter) -> None:
    """A teammate channel reaches one named person of the owner's: the job must name one
    the channel can reach, and ask for exactly one assignment."""
    from dispatcher.models import Person
    from dispatcher.people.directory import person_ref

    person = db.session.get(Person, job.person_id) if job.person_id is not None else None
    if person is None or person.owner_id != job.owner_id or person.archived:
        raise InvalidChange(
            "person_id", f"{adapter.title} goes to one of your people: pick who does “{job.title}”"
        )
    if job.assignments != 1:
        raise InvalidChange(
            "assignments", f"{adapter.title} goes to one person: set assignments to 1"
        )
    reason = adapter.reaches(person_ref(person.id))
    if reason:
        raise InvalidChange("person_id", reason)


def check_capabilities(job: MicroJob, adapter: Adapter) -> None:
    """Refuse what the channel cannot do before anything is sent: several assignments of one
    job need a channel that declares redundancy."""
    from dispatcher.errors import InvalidChange

    if job.assignments > 1 and not adapter.supports(Capability.REDUNDANCY):
        raise InvalidChange(
            "assignments",
            f"{adapter.title} takes one worker per job: set assignments to 1, or pick a "
            "channel that takes several",
        )


def dispatch_job(job: MicroJob, *, actor: str = "owner", commit: bool = True) -> Dispatch:
    """Reserve the money for the places still missing, stage a Dispatch holding them, move
    the job to queued, commit; the send task is queued just before the commit and handed its
    token after it (first_attempt.py). A re-order covers only the missing places.
    A refusal raises with the transaction half-written: the caller rolls back (dispatch_goal
    does; a request's session is rolled back by `refuse` or at teardown)."""
    # the lock (an edit of its price or channel commits first, and is seen, or waits), then
    # goal, connection, children, places: one statement on PostgreSQL when safe, else two
    # (request_reads.py; the reads are kept: they hold the connection)
    reads = lock_and_read(job)
    goal = job.goal
    adapter = check_delegable(job, goal)
    action = "requeue" if job.status in REDISPATCHABLE else "queue"
    lifecycle.target(job.status, action, job.id)  # fail before touching money
    count = places.missing(job, reads.live)
    if count < 1:
        raise InvalidTransition(
            job.id, job.status, action, ["every assignment is already out or done"]
        )
    dispatch = Dispatch(
        job_id=job.id,
        adapter=job.channel,
        connection_id=job.connection_id,
        idempotency_key=new_idempotency_key(),
        currency=goal.currency,
        state=DispatchState.PENDING,
        job_version=job.version,
    )
    until = first_attempt.lease_first(dispatch) if commit else None  # a lone dispatch
    # inserts the order, reserves, adds the places; then the job's reservation and status are
    # one UPDATE, and its Event one INSERT (Core statements: request_writes.py); on PostgreSQL
    # all of it is one statement when no envelope is above the job (request_folds.py), with
    # the COMMIT in its round trip
    early: list[int] = []  # the order whose task was queued before the commit

    def queue_early(order_id: int) -> Callable[[], None]:
        """Send the task now; note it as queued once Redis has answered."""
        answer = first_attempt.queue_early(order_id)

        def answered() -> None:
            if answer():
                early.append(order_id)

        return answered

    data = {"channel": job.channel, "assignments": count}
    move = request_writes.JobMove(action, actor, data, queue_early if commit else None)
    fee = adapter.fee_cents(job.price_cents)
    try:
        places.open_places(job, dispatch, count, fee, move=move, order_id=reads.order_id)
        if not commit:
            return dispatch
        call = first_attempt.carried.payload(job, dispatch, count)  # the rows, before commit
        # the task is queued before the commit (unless the statement carrying the commit
        # queued it) and waits for its token: the worker takes it up while the commit is
        # made durable
        if not early:
            queue_early(dispatch.id)()
        messages = _commit_holding_live_updates()
    except Exception:  # a refusal (no room), or the database failed: no token will come
        for order_id in early:
            first_attempt.call_off(order_id)
        raise
    first_attempt.hand_over(
        first_attempt.Lease(_id(dispatch), until, call),
        queued=bool(early),
        also=functools.partial(live_publish.add_to, messages=messages) if messages else None,
    )
    return dispatch


def _commit_holding_live_updates() -> list:
    """Commit, keeping the live updates for the hand-over's round trip (issue 12: one Redis
    round trip after the commit, not two); published only if the commit succeeded."""
    session = db.session()
    live_publish.hold(session)
    try:
        db.session.commit()
    finally:
        messages = live_publish.take_held(session)
    return messages


def dispatch_goal(goal: Goal, *, actor: str = "owner") -> list[Dispatch]:
    """Dispatch every delegated leaf that is still draft or ready, all or nothing."""
    parents = select(MicroJob.parent_id).where(
        MicroJob.goal_id == goal.id, MicroJob.parent_id.is_not(None)
    )
    jobs = db.session.scalars(
        select(MicroJob)
        .where(
            MicroJob.goal_id == goal.id,
            MicroJob.id.not_in(parents),
            MicroJob.mode == "delegate",
            MicroJob.status.in_(tuple(DISPATCHABLE)),
        )
        .order_by(MicroJob.id)
    ).all()
    try:
        dispatches = [dispatch_job(job, actor=actor, commit=False) for job in jobs]
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    for dispatch in dispatches:
        enqueue_send(dispatch)
    return dispatches


def retry_job(job: MicroJob, *, actor: str = "owner") -> Dispatch:
    """Send a failed, expired, rejected or cancelled job out again, under a new key."""
    if job.status not in REDISPATCHABLE:
        raise InvalidTransition(
            job.id, job.status, "requeue", lifecycle.allowed_actions(job.status)
        )
    return dispatch_job(job, actor=actor)


def open_dispatch(job: MicroJob) -> Dispatch | None:
    """The job's newest order that is still in play, if any."""
    for dispatch in reversed(job.dispatches):
        if dispatch.state in OPEN_ORDER:
            return dispatch
    return None


def cancel_job(job: MicroJob, *, actor: str = "owner") -> str:
    """Cancel a job: every place still in flight ends and gives its money back, work waiting
    for review leaves the queue, and open orders are cancelled at the platform (after commit).
    Places already accepted stay: their payment is owed to the worker.

    Returns a message for the owner saying what happened at the platform.
    """
    lock_job(job, *job.dispatches)  # a worker placing the order now finishes first, or waits
    lifecycle.target(job.status, "cancel", job.id)
    notes, owed = [], []
    for dispatch in job.dispatches:
        if dispatch.state not in OPEN_ORDER:
            continue
        for place in dispatch.assignments:
            if place.status in places.IN_FLIGHT:
                places.move(place, "cancel", job, actor=actor)
        DISPATCH.move(dispatch, "cancel", job=job, actor=actor)
        note = owe_cancel(dispatch)
        if note:
            notes.append(note)
        if dispatch.next_attempt_at is not None:
            owed.append(dispatch.id)
    for delivery in job.deliveries:
        if delivery.status == DeliveryState.SUBMITTED:
            DELIVERY.move(delivery, "close", job=job, actor=actor)
    note = "; ".join(dict.fromkeys(notes))
    lifecycle.transition(job, "cancel", actor=actor, data={"platform": note} if note else {})
    db.session.commit()
    for dispatch_id in owed:
        enqueue_quietly(enqueue_cancel, dispatch_id)
    return note


def enqueue_send(dispatch: Dispatch) -> None:
    """Enqueue after commit. If Redis is down the row stays pending and the reconciler
    enqueues it later, so a Redis error here is logged, not raised to the owner."""
    enqueue_quietly(send.enqueue_send, _id(dispatch))


def _id(dispatch: Dispatch) -> int:
    """A committed row's id from its identity: the commit expired the row, and reading
    `dispatch.id` would load it again, a SELECT on the way to the worker (issue 12)."""
    return sa_inspect(dispatch).identity[0]
