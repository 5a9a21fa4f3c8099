"""The call a first-attempt token carries: what a lone dispatch's first send needs, written
by its request, so the task that takes the token calls the platform without reading the
database first (issue 12: idle latency).

Why: the token's holder used to read the dispatch, its job, places and connection (one
SELECT and an ORM load of four rows, the largest stage between the dequeue and the call)
only to rebuild what the request had in hand a few milliseconds earlier. The request now
serializes the job spec (channels.job_spec, the very function the read path uses), the
idempotency key and the channel into the token; the task builds nothing from the database
before the call and loads the dispatch afterwards, to record the placement.

What the payload holds: no secret. Credentials stay encrypted in the database; the task
uses the adapter its process built from them (connections.adapter_for_connection's cache)
only if it was built from the very version of the connection the request saw, and no newer
version has been announced since (`changed`: every change of a connection's credentials,
options or webhook secret writes its new version to Redis before it commits). Otherwise the
adapter is built from the database, as it always was.

A teammate channel's spec carries a submission link minted in the task's own transaction:
those are not carried (`payload` gives None) and take the read path, as does a token that
cannot be decoded (a token written by an older release holds "1").
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import date

from flask import current_app
from redis.exceptions import RedisError

from adapters.base import Adapter, JobSpec, PersonRef
from dispatcher import connections
from dispatcher.models import Connection, Dispatch, MicroJob

log = logging.getLogger(__name__)

#: bumped when the payload's shape changes: a task of another release reads the database
FORMAT = 1
#: the newest version of a connection, announced by a change before it commits
VERSION_KEY = "dispatcher:connection-version:"
#: how long an announcement is kept: far longer than any token (lease - call timeout)
VERSION_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Call:
    """A decoded payload: the first attempt's call, and the connection version it was made
    for (`newest`: the version a change announced since, if any)."""

    adapter: str
    connection_id: int | None
    version: int | None
    path: str
    key: str
    job_id: int
    spec: JobSpec
    newest: int | None = None
    #: the channel's breaker as the token was taken: state and failures (raw)
    health: tuple | None = None


def payload(job: MicroJob, dispatch: Dispatch, count: int) -> str | None:
    """The token's value for a dispatch being staged with `count` places, built before the
    request's commit from the rows it loaded (no statement); None for what is not carried,
    or could not be (logged: the task reads the dispatch and meets the error there, as
    before, instead of the owner's request failing)."""
    try:
        return _payload(job, dispatch, count)
    except Exception:
        log.exception("dispatch %s: its call is not carried; its task reads it", dispatch.id)
        return None


def _payload(job: MicroJob, dispatch: Dispatch, count: int) -> str | None:
    from dispatcher.dispatch.channels import registry, spec_for

    cls = registry().classes().get(dispatch.adapter)
    if cls is None or cls.teammate:
        return None
    connection = None
    if dispatch.connection_id is not None:
        connection = _loaded(Connection, dispatch.connection_id)
        if connection is None:
            return None
    spec = spec_for(job, dispatch, count, job.person_id)  # each place names the job's person
    body = {
        "f": FORMAT,
        "a": dispatch.adapter,
        "v": connection.version if connection is not None else None,
        "p": connection.webhook_path if connection is not None else "",
        "k": dispatch.idempotency_key,
        "j": dispatch.job_id,
        "s": _plain(spec),
    }
    prefix = "" if dispatch.connection_id is None else str(dispatch.connection_id)
    # what first_attempt.take reads in Redis before the value is decoded
    return f"{prefix};{dispatch.adapter};{json.dumps(body, separators=(',', ':'))}"


def _loaded(model, ident):
    """A row the request already has (the session's identity map), without a statement."""
    from dispatcher.extensions import db

    return db.session.identity_map.get(db.session.identity_key(model, ident))


def _plain(spec: JobSpec) -> dict:
    out = asdict(spec)
    out["due_date"] = spec.due_date.isoformat() if spec.due_date else None
    return out


def decode(
    raw: bytes | str,
    newest: bytes | str | None = None,
    state: bytes | None = None,
    failures: bytes | None = None,
) -> Call | None:
    """The call a taken token carries (with what first_attempt.take read beside it); None
    when it carries none or cannot be read (the task then reads the database, as for a
    token of an older release)."""
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        prefix, channel, body = text.split(";", 2)
        data = json.loads(body)
        if channel != data["a"]:
            return None
        if data["f"] != FORMAT:
            return None
        s = dict(data["s"])
        s["acceptance_criteria"] = tuple(s["acceptance_criteria"])
        s["due_date"] = date.fromisoformat(s["due_date"]) if s["due_date"] else None
        s["person"] = PersonRef(**s["person"]) if s["person"] else None
        return Call(
            adapter=str(data["a"]),
            connection_id=int(prefix) if prefix else None,
            version=data["v"],
            path=data["p"],
            key=str(data["k"]),
            job_id=int(data["j"]),
            spec=JobSpec(**s),
            newest=int(newest) if newest is not None else None,
            health=(state, failures),
        )
    except Exception as exc:  # any malformed token: the read path decides, nothing is lost
        log.warning("a first-attempt token could not be decoded (%s); reading the dispatch", exc)
        return None


def adapter(call: Call) -> Adapter:
    """The call's adapter: this process's, if built from the connection version the request
    saw and no newer one was announced; else built from the database (one read)."""
    from dispatcher.dispatch.channels import registry

    if call.connection_id is None:
        return registry().get(call.adapter)
    hit = current_app.extensions.get(connections.CACHE, {}).get(call.connection_id)
    if (
        hit is not None
        and call.newest in (None, call.version)
        and hit[0] == (call.version, call.path)
        and type(hit[1]) is registry().classes().get(call.adapter)
    ):
        return hit[1]
    return connections.adapter_for_connection(call.connection_id)


def guarded(call: Call) -> Adapter:
    """The call's adapter with its breaker, told the state read with the token (so it asks
    Redis nothing more before the call)."""
    from dispatcher.dispatch.breaker import KEY_PREFIX, breaker_key, guard

    found = guard(adapter(call))
    read = KEY_PREFIX + breaker_key(call.adapter, call.connection_id)  # the hash take read
    if call.health is not None and getattr(found.breaker, "key", None) == read:
        found.breaker.read_with(*call.health)
    return found


def changed(connection: Connection) -> None:
    """Announce a connection's new version before the change commits, so no task calls
    with the credentials it had when a request carried them. A Redis error is logged: the
    change goes through (Redis is a transport), and a token left from before it could then
    still be sent with the old credentials until it runs out."""
    from dispatcher.queues import redis_connection

    try:
        redis_connection().set(
            VERSION_KEY + str(connection.id), connection.version, ex=VERSION_TTL_SECONDS
        )
    except RedisError as exc:
        log.warning("connection %s: could not announce its new version (%s)", connection.id, exc)
