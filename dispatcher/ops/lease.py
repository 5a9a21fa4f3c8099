"""A lease in Redis: at most one holder at a time, renewed by the holder, taken over by
another process within `ttl` seconds of the holder's death.

The key expires on Redis's clock, and only the token that took it can renew or release it
(a holder paused past its lease cannot clobber the next one's).
"""

from __future__ import annotations

import uuid

from redis import Redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """One named lease; `hold()` takes or renews it and says whether we hold it now."""

    def __init__(self, connection: Redis, name: str, ttl: float, holder: str = "") -> None:
        self.connection = connection
        self.key = f"dispatcher:lease:{name}"
        self.ttl_ms = int(ttl * 1000)
        self.token = f"{holder or 'holder'}:{uuid.uuid4().hex}"
        self.held = False

    def hold(self) -> bool:
        """Renew the lease if it is ours, else try to take it. Raises RedisError."""
        if self.held and self.connection.eval(_RENEW, 1, self.key, self.token, self.ttl_ms):
            return True
        self.held = bool(self.connection.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def release(self) -> None:
        if self.held:
            self.connection.eval(_RELEASE, 1, self.key, self.token)
            self.held = False

    def holder(self) -> str | None:
        value = self.connection.get(self.key)
        return value.decode() if value else None
