"""A per-adapter circuit breaker whose state lives in Redis, so every worker shares it.

In-process breakers never trip when each worker keeps its own count (RQ-NOTES). Here one hash
per adapter (``dispatcher:breaker:<name>``) holds the state and every change is one Lua
script, so workers racing on the same platform see one consistent breaker:

- closed: calls pass; ``threshold`` consecutive failures open it;
- open: calls fail fast with `CircuitOpen` (retryable, with ``retry_after``) for
  ``reset_seconds``;
- half-open: then exactly one caller (the probe) is let through; its success closes the
  breaker, its failure opens it again. A probe that dies frees its slot after ``probe_seconds``.

Only signs that the platform is down count as failures: connection errors, timeouts, 5xx.
A 4xx (including 429) means it is up and answering. If Redis itself is unreachable the
breaker lets calls through: Redis is a transport (DESIGN rule 1), not a reason to stop work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from dispatcher.errors import CircuitOpen
from dispatcher.redis_clock import redis_now

log = logging.getLogger(__name__)

KEY_PREFIX = "dispatcher:breaker:"
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
#: after Redis fails to answer, how long calls go unguarded before it is asked again
REDIS_DOWN_SKIP = 10.0

# KEYS[1] the hash; ARGV: now, reset_seconds, probe_seconds.
# Returns {allowed (0/1), state, seconds until a call may pass}.
_BEFORE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local now = tonumber(ARGV[1])
if state == 'closed' then return {1, state, '0'} end
local opened = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
local reset = tonumber(ARGV[2])
if state == 'open' then
  if now - opened < reset then return {0, state, tostring(reset - (now - opened))} end
  state = 'half_open'
  redis.call('HSET', KEYS[1], 'state', state)
end
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if probe_until > now then return {0, state, tostring(probe_until - now)} end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[3])))
return {1, 'probe', '0'}
"""

# KEYS[1] the hash; ARGV: now, threshold. Returns the new state.
_FAILURE = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_failure_at', ARGV[1])
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[2])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', ARGV[1], 'probe_until', '0')
  redis.call('HINCRBY', KEYS[1], 'times_opened', 1)
  return 'open'
end
return state
"""

# KEYS[1] the hash. Any success closes the breaker and resets the count.
_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if state ~= 'closed' or failures ~= 0 then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', '0', 'probe_until', '0')
end
return 'closed'
"""


@dataclass(frozen=True)
class BreakerState:
    """What the status page shows about one adapter's breaker."""

    adapter: str
    state: str
    failures: int
    opened_at: float | None
    retry_in: float
    times_opened: int


class CircuitBreaker:
    """One adapter's breaker. Cheap to build; all state is in Redis."""

    def __init__(
        self,
        name: str,
        connection: Redis,
        *,
        threshold: int = 10,
        reset_seconds: float = 30.0,
        probe_seconds: float = 30.0,
        clock=None,
    ):
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.name = name
        self.connection = connection
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.probe_seconds = probe_seconds
        #: Redis's clock by default: the breaker's timers are judged by workers on any host
        self.clock = clock or (lambda: redis_now(self.connection))
        self.key = KEY_PREFIX + name
        self._skip_until = 0.0
        #: per thread: did this call's `before_call` find the breaker closed with no failures
        self._healthy = threading.local()
        #: per thread: the hash's state and failures, read by the caller just before
        #: (first_attempt.take reads them with the token: one round trip less)
        self._known = threading.local()
        self._before = connection.register_script(_BEFORE)
        self._failure = connection.register_script(_FAILURE)
        self._success = connection.register_script(_SUCCESS)

    def before_call(self) -> None:
        """Raise CircuitOpen unless a call may go out now.

        Closed and healthy, the common case, costs one read (HMGET) and no script or write;
        the call's success then has nothing to reset (`record_success` sends nothing)."""
        self._healthy.seen = False
        known, self._known.value = getattr(self._known, "value", None), None
        if self._redis_down():
            return
        try:
            state, failures = known or self.connection.hmget(self.key, "state", "failures")
            if state in (None, b"closed", "closed"):
                self._healthy.seen = not failures or int(failures) == 0
                return
            allowed, state, wait = self._before(
                keys=[self.key], args=[self.clock(), self.reset_seconds, self.probe_seconds]
            )
        except RedisError as exc:
            self._skip_redis(exc)
            return
        if not int(allowed):
            state = state.decode() if isinstance(state, bytes) else state
            retry_after = max(0.0, float(wait))
            raise CircuitOpen(
                self.name,
                f"circuit {state.replace('_', '-')}: calls paused for {retry_after:.0f}s",
                retry_after=retry_after,
            )

    def read_with(self, state: bytes | None, failures: bytes | None) -> None:
        """The next `before_call` on this thread judges these values, read from the hash
        moments ago, instead of reading them again (an open breaker still runs its script)."""
        self._known.value = (state, failures)

    def record_success(self) -> None:
        if getattr(self._healthy, "seen", False):
            return  # closed with no failures when the call went out: nothing to reset
        self._run(self._success, list)

    def record_failure(self) -> None:
        self._run(self._failure, lambda: [self.clock(), self.threshold])

    def _run(self, script, args: Callable[[], list[Any]]) -> None:
        if self._redis_down():
            return
        try:
            script(keys=[self.key], args=args())
        except RedisError as exc:
            self._skip_redis(exc)

    def _redis_down(self) -> bool:
        return time.monotonic() < self._skip_until

    def _skip_redis(self, exc: RedisError) -> None:
        """Redis did not answer (after the client's own retries): let calls through without
        asking it for a while, rather than make every platform call wait on it too."""
        log.warning("breaker %s: Redis unreachable (%s); calls pass unguarded for %ss",
                    self.name, exc, REDIS_DOWN_SKIP)  # fmt: skip
        self._skip_until = time.monotonic() + REDIS_DOWN_SKIP

    def snapshot(self) -> BreakerState:
        """The breaker as the status page shows it (raises RedisError if Redis is down)."""
        raw = {k.decode(): v.decode() for k, v in self.connection.hgetall(self.key).items()}
        state = raw.get("state", CLOSED)
        opened_at = float(raw["opened_at"]) if raw.get("opened_at") else None
        retry_in = 0.0
        if state == OPEN and opened_at is not None:
            retry_in = max(0.0, self.reset_seconds - (self.clock() - opened_at))
            if retry_in == 0.0:
                state = HALF_OPEN  # the next call will be the probe
        return BreakerState(
            adapter=self.name,
            state=state,
            failures=int(raw.get("failures", 0)),
            opened_at=opened_at,
            retry_in=retry_in,
            times_opened=int(raw.get("times_opened", 0)),
        )

    def reset(self) -> None:
        """Forget everything (an operator's override, and tests)."""
        self.connection.delete(self.key)


def breaker_for(name: str, connection: Redis | None = None) -> CircuitBreaker:
    """The breaker of adapter `name` on the app's Redis."""
    if connection is None:
        from dispatcher.queues import redis_connection

        connection = redis_connection()
    return CircuitBreaker(name, connection)


def breaker_key(adapter_name: str, connection_id: int | None) -> str:
    """One breaker per connection: one owner's bad account never pauses another's calls."""
    return adapter_name if connection_id is None else f"{adapter_name}:{connection_id}"


def guard(adapter) -> Any:
    """Give an adapter the shared breaker of its connection (once); return the adapter."""
    if getattr(adapter, "breaker", None) is None:
        key = breaker_key(adapter.name, getattr(adapter, "connection_id", None))
        adapter.breaker = breaker_for(key)
    return adapter
