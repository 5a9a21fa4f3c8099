"""Outbound URL safety: the one place that decides whether Dispatcher may call a URL an owner
gave (a Slack webhook URL, a teammate's endpoint, a file URL).

An owner-given URL must not turn Dispatcher into a proxy for the network it runs in: any URL
whose host resolves to a loopback, private, link-local, multicast, reserved, unspecified or
cloud-metadata address (IPv4 and IPv6, IPv4-mapped included) is refused, unless the settings'
allow-list (OUTBOUND_ALLOWLIST: hosts, host:port pairs or CIDRs) names it. `check_url` answers
when a URL is saved; `safe_session` checks again at connection time, against the address
actually connected to (a name that resolved to a public address when saved may resolve to
127.0.0.1 now: DNS rebinding), and refuses redirects to a refused address. Fixed,
operator-set bases (the sandbox, Microworkers) do not go through here.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection as u3_connection

from dispatcher.errors import DispatcherError

#: the addresses cloud platforms serve instance credentials on (AWS, GCP, Azure, OpenStack
#: use the IPv4 one; AWS Nitro also the IPv6 one)
METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the IP addresses it resolves to, as strings; tests pass their own
Resolver = Callable[[str, int], list[str]]


class UnsafeURL(DispatcherError, ValueError):
    """An owner-given URL Dispatcher must not call. A ValueError too, so every form and API
    that reports bad input (a 422, a form error) reports this one; `field` names the input
    the URL came from, when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(message)


class Unresolved(UnsafeURL):
    """The host does not resolve (now). Refused when a URL is saved; when a call goes out,
    a connection error like any other (retried: DNS failures are often passing)."""


def system_resolver(host: str, port: int) -> list[str]:
    """What the operating system's resolver answers for `host`, each address once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(f"{host} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: IPAddress | str) -> str | None:
    """Why `address` may not be called (None: it is a public address)."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            inner = refusal(embedded)
            return f"an IPv6 form of {embedded}, {inner}" if inner else None
    for test, reason in (
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ):
        if test:
            return reason
    return None


@dataclass(frozen=True)
class Allowlist:
    """OUTBOUND_ALLOWLIST, parsed: names (any port), name:port pairs, and networks."""

    hosts: frozenset[str] = frozenset()
    host_ports: frozenset[tuple[str, int]] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        hosts, host_ports, networks = set(), set(), []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            host, sep, port = entry.rpartition(":")
            if sep and port.isdigit() and host:
                host_ports.add((_host(host), int(port)))
            else:
                hosts.add(_host(entry))
        return cls(frozenset(hosts), frozenset(host_ports), tuple(networks))

    def names(self, host: str, port: int) -> bool:
        host = _host(host)
        return host in self.hosts or (host, port) in self.host_ports

    def covers(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return any(ip.version == net.version and ip in net for net in self.networks)


class Guard:
    """The check itself, shared by `check_url` and the connections of `safe_session`."""

    def __init__(self, settings: Any, resolver: Resolver | None = None):
        self.allowlist = Allowlist.parse(getattr(settings, "outbound_allowlist", ()) or ())
        self.resolver = resolver or system_resolver

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses `host` resolves to now, all of them callable; UnsafeURL if any
        is refused (a name with one bad address among good ones is refused too)."""
        found = self.resolver(_host(host), port)
        if not found:
            raise Unresolved(f"{host} does not resolve to any address")
        for address in found:
            self.check_address(host, port, address)
        return found

    def check_address(self, host: str, port: int, address: str) -> None:
        """Raise UnsafeURL unless `address` (what `host` resolved to) may be called."""
        if self.allowlist.names(host, port) or self.allowlist.covers(address):
            return
        reason = refusal(address)
        if reason:
            what = f"{host} is" if _host(host) == address else f"{host} resolves to {address},"
            raise UnsafeURL(f"{what} {reason}: refused (OUTBOUND_ALLOWLIST can allow it)")

    def check_url(self, url: str) -> list[str]:
        _, host, port = split_url(url)
        if self.allowlist.names(host, port):
            return []  # allowed whatever it resolves to: no need to ask the resolver now
        return self.addresses(host, port)


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; UnsafeURL for anything else."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("a URL is required")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeURL(f"only http and https URLs can be called, not {scheme or 'this'!r}")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def check_url(
    url: str, settings: Any, resolver: Resolver | None = None, *, field: str | None = None
) -> list[str]:
    """Raise UnsafeURL unless Dispatcher may call `url`; returns the addresses it resolves
    to now (none for a host the allow-list names: it is not resolved), checked again at
    connection time by `safe_session`. `field` is put on the
    error, for the form or API input the URL came from."""
    try:
        return Guard(settings, resolver).check_url(url)
    except UnsafeURL as exc:
        if field is None:
            raise
        raise UnsafeURL(str(exc), field=field) from None


def safe_session(settings: Any, resolver: Resolver | None = None) -> requests.Session:
    """A requests session for owner-given URLs: every connection resolves the host once,
    checks each address, connects to the checked address itself (Host and TLS SNI stay the
    URL's name); a redirect's target is a new connection, checked the same way. Proxies from
    the environment are not used (they would connect on our behalf, unchecked)."""
    return SafeSession(Guard(settings, resolver))


class SafeSession(requests.Session):
    """Redirects are followed only where a connection may go: each hop opens its own
    connection, which checks its address like the first (the refusal names it)."""

    def __init__(self, guard: Guard):
        super().__init__()
        self.guard = guard
        self.trust_env = False
        adapter = _GuardedAdapter(guard)
        self.mount("http://", adapter)
        self.mount("https://", adapter)


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: Guard):
        self.guard = guard
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self.guard)


def _pool_classes(guard: Guard) -> dict[str, type[HTTPConnectionPool]]:
    class Conn(_GuardedConnection, HTTPConnection):
        _guard = guard

    class TLSConn(_GuardedConnection, HTTPSConnection):
        _guard = guard

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConn

    return {"http": Pool, "https": TLSPool}


class _GuardedConnection:
    """urllib3's connection, resolving and checking before it connects to the checked IP."""

    _guard: Guard

    def _new_conn(self) -> socket.socket:
        host, port = self._dns_host, self.port  # type: ignore[attr-defined]
        last: OSError | None = None
        try:
            addresses = self._guard.addresses(host, port)
        except Unresolved as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, socket.gaierror) else None
            raise NameResolutionError(host, self, cause or socket.gaierror(str(exc))) from exc
        for address in addresses:
            try:
                sock = u3_connection.create_connection(
                    (address, port),
                    self.timeout,  # type: ignore[attr-defined]
                    source_address=self.source_address,  # type: ignore[attr-defined]
                    socket_options=self.socket_options,  # type: ignore[attr-defined]
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(self, f"Connection to {host} timed out") from exc
            except OSError as exc:
                last = exc
                continue
            try:
                self._guard.check_address(host, port, str(sock.getpeername()[0]))
            except UnsafeURL:
                sock.close()
                raise
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {last}")


def _host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()
