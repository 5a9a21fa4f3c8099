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


def token_key(dispatch_id: int) -> str:
    return f"dispatcher:first-attempt:{dispatch_id}"


def lease_first(dispatch: Dispatch) -> datetime:
    """Count the first attempt and write its lease on a dispatch being staged (before the
    request's commit); the lease's end."""
    until = shared_utcnow() + lease(current_app.config["SETTINGS"])
    dispatch.attempts = 1
    dispatch.next_attempt_at = until
    return until


def hand_over(first: Lease, *, also: Callable[[Pipeline], object] | None = None) -> None:
    """After the commit: leave the token for the dispatch's task, then enqueue the task.
    Redis errors are logged, not raised: the reconciler queues the pending dispatch, whose
    task claims it when the lease runs out. `also`: the caller's own commands for the same
    round trip (the commit's live updates, publish.add_to)."""
    from dispatcher.dispatch import send

    settings = current_app.config["SETTINGS"]
    left = first.until - shared_utcnow() - timedelta(seconds=call_timeout(settings))

    def leave_token(pipe: Pipeline) -> None:
        if left > timedelta(0):
            value = first.call or "1"
            pipe.set(token_key(first.dispatch_id), value, px=int(left.total_seconds() * 1000))
        if also is not None:
            also(pipe)

    try:
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


def withdraw(dispatch: Dispatch) -> bool:
    """Take back the token of a dispatch being closed: true if its leased first attempt had
    not started, and now never will (no task can take the token any more). False when Redis
    cannot say: the attempt may be out, and the platform is owed a look-up."""
    try:
        return bool(redis_connection().delete(token_key(dispatch.id)))
    except RedisError as exc:
        log.warning("dispatch %s: could not take its token back (%s)", dispatch.id, exc)
        return False
