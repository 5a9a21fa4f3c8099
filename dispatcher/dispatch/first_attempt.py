"""A lone dispatch's first attempt, leased by the owner's own request.

Why: a send task used to claim its dispatch (a conditional UPDATE counting the attempt and
writing the lease) and commit that, an fsync on SQLite, before it could call the platform.
For an owner who dispatches one job and waits for it, that claim was a fifth of the time
from the click to the order (issue 12: idle latency). The request's transaction already
writes the dispatch; it can write the first lease and count the first attempt too, so the
worker only reads what the call needs.

What keeps it effectively-once:

- The lease is in the database before the send is enqueued, as a claim's is: no other task
  can claim the dispatch until it runs out, and the attempt is counted, so a cancel meanwhile
  owes the platform a look-up and any later attempt looks the key up before creating.
- Which task holds that first attempt is decided by a one-use token in Redis, set after the
  commit: the first run of `dispatch-<id>` to take it (GETDEL) holds the attempt; a crash
  retry of the same job, or a copy the reconciler queued, finds no token and claims as
  before, once the lease has run out (so it looks the key up first).
- The token carries the call (carried.py): the spec, the key, the channel, so its holder
  calls the platform before any database statement and reads the dispatch afterwards, to
  record the placement. A cancel meanwhile is found then, as for any call in flight.
- The token lives `lease - call_timeout` from the lease's start, so a task that takes it
  has at least a whole task timeout of lease left: RQ stops the task before the lease ends,
  exactly as after a claim.
- A dispatch closed before any task took its token (the owner cancels at once, the job
  runs out) takes the token back: no call was made and none will be, so the platform is
  owed no cancel, as for a dispatch never claimed.
- If Redis is down after the commit the dispatch stays pending with its lease; the
  reconciler queues it and the task claims it when the lease runs out.

The task is queued before the commit, the token after it (`queue_early`, `hand_over`):
the worker's dequeue and RQ's bookkeeping (about a millisecond) then run while the commit
is made durable, instead of after it (issue 12: idle latency). A task queued early waits
for its token (`wait`): the hand-over pushes a wake-up beside the token, so the task sleeps
in one BLPOP, not in a poll. If the token never comes (the commit failed, the request died
before the hand-over, Redis lost it), the wait ends after `WAIT_SECONDS` and the task goes
on as a run without a token: it finds no dispatch, or one leased, and claims it when the
lease runs out, as above. A run without the early flag (a reconciler's copy) never waits.

Batches (send_batch.py) are for many dispatches at once (`dispatch_goal`, a backlog): their
dispatches are staged without a lease and claimed by their tasks as before.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import RedisError

from dispatcher.dispatch import carried
from dispatcher.dispatch.backoff import call_timeout, lease
from dispatcher.dispatch.breaker import KEY_PREFIX
from dispatcher.models import Dispatch
from dispatcher.queues import redis_connection
from dispatcher.redis_clock import shared_utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """The first lease a request wrote: which dispatch, and until when (Redis's clock)."""

    dispatch_id: int
    until: datetime
    #: the call the token carries (carried.payload); None: the holder reads the dispatch
    call: str | None = None


#: how long a task queued before its request's commit waits for the token: a commit takes
#: milliseconds; past this the request is taken to have failed or died, and the task goes on
#: without the token (it claims when the lease runs out)
WAIT_SECONDS = 1


def token_key(dispatch_id: int) -> str:
    return f"dispatcher:first-attempt:{dispatch_id}"


def ready_key(dispatch_id: int) -> str:
    """The wake-up pushed beside the token, for a task that is waiting for it (`wait`)."""
    return f"dispatcher:first-attempt-ready:{dispatch_id}"


def _wake(pipe: Pipeline, dispatch_id: int) -> None:
    """Push the wake-up a waiting task sleeps on (`wait`); it outlives any wait."""
    pipe.rpush(ready_key(dispatch_id), 1)
    pipe.expire(ready_key(dispatch_id), WAIT_SECONDS + 5)


def lease_first(dispatch: Dispatch) -> datetime:
    """Count the first attempt and write its lease on a dispatch being staged (before the
    request's commit); the lease's end."""
    until = shared_utcnow() + lease(current_app.config["SETTINGS"])
    dispatch.attempts = 1
    dispatch.next_attempt_at = until
    return until


def queue_early(dispatch_id: int) -> Callable[[], bool]:
    """Before the commit: queue the dispatch's task, marked to wait for its token, so that
    the worker takes it up while the commit is made durable. Sent at once; the returned
    function reads whether it was queued (call it once, after what runs meanwhile, even if
    that failed). False if Redis refused: the hand-over then queues it after the commit,
    as before."""
    from dispatcher.dispatch import send

    def refused(exc: RedisError) -> bool:
        log.warning("dispatch %s: could not queue its task early (%s)", dispatch_id, exc)
        return False

    try:
        answer = send.enqueue_early(dispatch_id)
    except RedisError as exc:
        return functools.partial(refused, exc)

    def queued() -> bool:
        try:
            return answer()
        except RedisError as exc:
            return refused(exc)

    return queued


def call_off(dispatch_id: int) -> None:
    """The request refused or failed after queueing its task early: take the task out of
    the queue if no worker has taken it yet, and wake it if one has (it then finds no token
    and no dispatch, or a leased one, as any run without a token), instead of leaving it to
    wait its while."""
    from dispatcher.dispatch import send
    from dispatcher.queues import DISPATCH, drop_queued

    try:
        drop_queued(DISPATCH, [send.send_job_id(dispatch_id)])
        with redis_connection().pipeline(transaction=False) as pipe:
            _wake(pipe, dispatch_id)
            pipe.execute()
    except RedisError as exc:
        log.warning("dispatch %s: could not call its task off (%s)", dispatch_id, exc)


def hand_over(
    first: Lease, *, queued: bool = False, also: Callable[[Pipeline], object] | None = None
) -> None:
    """After the commit: leave the token for the dispatch's task and wake it if it waits;
    enqueue the task unless `queued` (queue_early did). Redis errors are logged, not raised:
    the reconciler queues the pending dispatch, whose task claims it when the lease runs
    out. `also`: the caller's own commands for the same round trip (the commit's live
    updates, publish.add_to)."""
    from dispatcher.dispatch import send

    settings = current_app.config["SETTINGS"]
    left = first.until - shared_utcnow() - timedelta(seconds=call_timeout(settings))

    def leave_token(pipe: Pipeline) -> None:
        if left > timedelta(0):
            value = first.call or "1"
            pipe.set(token_key(first.dispatch_id), value, px=int(left.total_seconds() * 1000))
            if queued:
                _wake(pipe, first.dispatch_id)
        if also is not None:
            also(pipe)

    try:
        if queued:
            with redis_connection().pipeline(transaction=False) as pipe:
                leave_token(pipe)
                pipe.execute()
        else:
            send.enqueue_send(first.dispatch_id, also=leave_token)  # one round trip for both
    except RedisError as exc:
        log.warning(
            "could not hand dispatch %s to a worker (%s); the reconciler will",
            first.dispatch_id,
            exc,
        )


# KEYS[1] the token; ARGV[1] the prefix of a connection's announced version, ARGV[2] the
# breakers'. Takes the token and reads what its call needs of Redis: the version its
# connection has now (carried.changed) and its breaker's state, in one round trip.
_TAKE = """
local value = redis.call('GETDEL', KEYS[1])
if not value then return false end
local connection, channel = string.match(value, '^(%d*);([^;]+);')
if not channel then return {value, false, false, false} end
local version, breaker = false, ARGV[2] .. channel
if connection ~= '' then
  version = redis.call('GET', ARGV[1] .. connection)
  breaker = breaker .. ':' .. connection
end
local health = redis.call('HMGET', breaker, 'state', 'failures')
return {value, version, health[1], health[2]}
"""


@functools.cache
def _take_script() -> Script:
    return redis_connection().register_script(_TAKE)  # called with each app's client


def take(dispatch_id: int) -> list | None:
    """Take the dispatch's token: None if another run took it (or none was left); else
    this task holds the first attempt, and gets the token's value, the newest version
    announced for the connection it names, and that channel's breaker state and failures
    (carried.decode reads them all)."""
    found = _take_script()(
        keys=[token_key(dispatch_id)],
        args=[carried.VERSION_KEY, KEY_PREFIX],
        client=redis_connection(),
    )
    return list(found) if found else None


def wait(dispatch_id: int, seconds: float = WAIT_SECONDS) -> list | None:
    """`take`, for a task queued before its request's commit: if the token is not there
    yet, sleep until the hand-over's wake-up (or `seconds`), then take it. None: no token
    came (the task goes on as a run without one)."""
    taken = take(dispatch_id)
    if taken is not None:
        return taken
    try:
        redis_connection().blpop([ready_key(dispatch_id)], timeout=seconds)
    except RedisError as exc:
        log.warning("dispatch %s: could not wait for its token (%s)", dispatch_id, exc)
        return None
    return take(dispatch_id)


def withdraw(dispatch: Dispatch) -> bool:
    """Take back the token of a dispatch being closed: true if its leased first attempt had
    not started, and now never will (no task can take the token any more). False when Redis
    cannot say: the attempt may be out, and the platform is owed a look-up."""
    try:
        return bool(redis_connection().delete(token_key(dispatch.id)))
    except RedisError as exc:
        log.warning("dispatch %s: could not take its token back (%s)", dispatch.id, exc)
        return False
