"""REDIS_URL forms beyond redis-py's own: Redis Sentinel.

`redis://`, `rediss://` (TLS) and `unix://` go to `Redis.from_url` as they are, password
included. `redis+sentinel://[:password@]host:port[,host:port...]/service[/db]` asks those
Sentinels which server is the master of `service` now, and again after a failover
(`rediss+sentinel://` talks TLS to the master). The password is the master's.
"""

from __future__ import annotations

from urllib.parse import unquote

from redis import Redis

SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEMES)


def parse_sentinel(url: str) -> tuple[list[tuple[str, int]], str, dict]:
    """(sentinel addresses, service name, keyword arguments for the master's client)."""
    scheme, rest = url.split("://", 1)
    netloc, _, path = rest.partition("/")
    kwargs: dict = {}
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, password = auth.partition(":")
        if password:
            kwargs["password"] = unquote(password)
        if user:
            kwargs["username"] = unquote(user)
    hosts = []
    for part in netloc.split(","):
        host, _, port = part.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"sentinel address {part!r} is not host:port")
        hosts.append((host, int(port)))
    segments = [s for s in path.split("/") if s]
    if not segments:
        raise ValueError("the sentinel URL names no service (…/mymaster)")
    if len(segments) > 1:
        kwargs["db"] = int(segments[1])
    if scheme.startswith("rediss"):
        kwargs["ssl"] = True
    return hosts, segments[0], kwargs


def connect_url(url: str, **options) -> Redis:
    """A client for any REDIS_URL form; `options` (timeouts) apply to the data connections."""
    if not is_sentinel(url):
        return Redis.from_url(url, **options)
    from redis.sentinel import Sentinel

    hosts, service, kwargs = parse_sentinel(url)
    timeout = options.get("socket_timeout")
    sentinel = Sentinel(hosts, socket_timeout=timeout or 2.0)
    return sentinel.master_for(service, **kwargs, **options)
