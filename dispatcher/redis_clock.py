"""One clock for every host: Redis's.

Hosts' wall clocks drift apart; anything that one process writes and another judges by age
(liveness keys, leases, breaker timers, queue ages) reads the time from the Redis server
they share (`TIME`), so a host whose clock is off by a minute judges like the others.
"""

from __future__ import annotations

from redis import Redis


def redis_now(connection: Redis) -> float:
    """Seconds since the epoch by the Redis server's clock."""
    seconds, micros = connection.time()
    return seconds + micros / 1_000_000
