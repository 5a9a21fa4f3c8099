"""One clock for every host: Redis's.

Hosts' wall clocks drift apart; anything that one process writes and another judges by age
(liveness keys, leases, breaker timers, queue ages) reads the time from the Redis server
they share (`TIME`), so a host whose clock is off by a minute judges like the others.

`SharedClock` is that clock for times stored in the database (the dispatch and push leases):
it keeps the offset between Redis and this host for a few seconds, so a claim costs at most
one `TIME` call, and most cost none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError

from dispatcher.queues import redis_connection

log = logging.getLogger(__name__)

#: how long (monotonic seconds) a measured offset is trusted before TIME is asked again
OFFSET_TTL = 10.0

_EXT_KEY = "dispatcher.shared_clock"


def redis_now(connection: Redis) -> float:
    """Seconds since the epoch by the Redis server's clock."""
    seconds, micros = connection.time()
    return seconds + micros / 1_000_000


class SharedClock:
    """Redis's time, read as this host's clock plus a cached offset.

    `host_time` is the host's wall clock (`time.time`); tests pass a skewed one. When Redis
    cannot be reached the last offset is kept (or none, before the first reading): a lease
    then errs by the host's skew, which is what it did before this clock existed."""

    def __init__(
        self,
        connection: Redis,
        host_time: Callable[[], float] = time.time,
        ttl: float = OFFSET_TTL,
    ) -> None:
        self.connection = connection
        self.host_time = host_time
        self.ttl = ttl
        self.offset: float | None = None
        self.measured_at = 0.0

    def timestamp(self) -> float:
        """Seconds since the epoch by Redis's clock (at most one TIME call per `ttl`)."""
        if self.offset is None or time.monotonic() - self.measured_at > self.ttl:
            self._measure()
        return self.host_time() + (self.offset or 0.0)

    def now(self) -> datetime:
        """An aware UTC datetime by Redis's clock: what leases store and compare."""
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def _measure(self) -> None:
        try:
            before = self.host_time()
            remote = redis_now(self.connection)
            after = self.host_time()
        except RedisError as exc:
            log.warning("Redis TIME failed (%s); the lease clock keeps its last offset", exc)
            self.measured_at = time.monotonic()  # do not ask again on every call while down
            return
        self.offset = remote - (before + after) / 2
        self.measured_at = time.monotonic()


def shared_clock(app: Flask | None = None) -> SharedClock:
    """This process's SharedClock on the app's Redis (made on first use)."""
    app = app or current_app._get_current_object()
    clock = app.extensions.get(_EXT_KEY)
    if clock is None:
        clock = SharedClock(redis_connection(app))
        app.extensions[_EXT_KEY] = clock
    return clock


def shared_utcnow() -> datetime:
    """Now by Redis's clock, for the current app: the time leases are written and judged in."""
    return shared_clock().now()
