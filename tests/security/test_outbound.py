"""Outbound URL safety (issue 9 part 6): owner-given URLs that reach loopback, private,
link-local, multicast, reserved, unspecified or metadata addresses are refused unless the
allow-list names them, again at connection time (DNS rebinding), and on redirects."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest
import requests
from fakes.receiver import Receiver
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Response

from dispatcher.security.outbound import UnsafeURL, check_url, refusal, safe_session


@dataclass(frozen=True)
class Settings:
    outbound_allowlist: tuple[str, ...] = ()


# Stated by hand, not derived from the code: the address, and whether it may be called.
ADDRESSES = [
    ("127.0.0.1", False),
    ("127.8.9.10", False),
    ("10.0.0.1", False),
    ("172.16.5.4", False),
    ("172.31.255.255", False),
    ("192.168.1.1", False),
    ("169.254.169.254", False),  # cloud metadata
    ("169.254.10.10", False),  # link-local
    ("100.64.0.1", False),  # carrier-grade NAT, not public
    ("0.0.0.0", False),
    ("224.0.0.1", False),
    ("239.255.255.250", False),
    ("240.0.0.1", False),  # reserved
    ("255.255.255.255", False),
    ("::1", False),
    ("::", False),
    ("fe80::1", False),
    ("fc00::1", False),
    ("fd00:ec2::254", False),  # AWS metadata over IPv6
    ("ff02::1", False),
    ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
    ("::ffff:169.254.169.254", False),
    ("::ffff:10.1.2.3", False),
    ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
    ("93.184.216.34", True),
    ("8.8.8.8", True),
    ("172.32.0.1", True),  # just outside 172.16/12
    ("2606:4700:4700::1111", True),
    ("::ffff:8.8.8.8", True),
]


@pytest.mark.parametrize(("address", "callable_"), ADDRESSES)
def test_address_table(address, callable_):
    assert (refusal(address) is None) is callable_


def fixed(*answers: str):
    return lambda host, port: list(answers)


@pytest.mark.parametrize(("address", "callable_"), ADDRESSES)
def test_a_name_resolving_to_the_address(address, callable_):
    url = "https://hooks.example.com/services/T1/B2/x"
    if callable_:
        assert check_url(url, Settings(), fixed(address)) == [address]
    else:
        with pytest.raises(UnsafeURL, match="refused"):
            check_url(url, Settings(), fixed(address))


def test_literal_addresses_in_urls():
    for url in (
        "http://127.0.0.1:5000/",
        "http://[::1]/",
        "http://[::ffff:7f00:1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0x7f000001/",  # another spelling of 127.0.0.1 the resolver understands
        "http://localhost/",
    ):
        with pytest.raises(UnsafeURL):
            check_url(url, Settings())


def test_one_bad_address_among_good_ones_refuses_the_name():
    with pytest.raises(UnsafeURL, match="10.0.0.7"):
        check_url("https://x.example/", Settings(), fixed("8.8.8.8", "10.0.0.7"))


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
     "example.com/x", "", "http://", "http://example.com:99999/"],
)  # fmt: skip
def test_only_http_and_https_urls(url):
    with pytest.raises(UnsafeURL):
        check_url(url, Settings(), fixed("8.8.8.8"))


def test_the_allow_list_names_hosts_host_ports_and_networks():
    settings = Settings(("127.0.0.1:5005", "intranet.example", "10.20.0.0/16", "fd12::/16"))
    assert check_url("http://127.0.0.1:5005/x", settings) == []  # named: not even resolved
    with pytest.raises(UnsafeURL):
        check_url("http://127.0.0.1:5006/x", settings)  # another port of the same host
    assert check_url("http://intranet.example/", settings, fixed("192.168.0.3")) == []
    assert check_url("http://INTRANET.example./", settings, fixed("192.168.0.3")) == []
    assert check_url("http://ci.example/", settings, fixed("10.20.3.4")) == ["10.20.3.4"]
    assert check_url("http://ci.example/", settings, fixed("fd12::4")) == ["fd12::4"]
    with pytest.raises(UnsafeURL):
        check_url("http://ci.example/", settings, fixed("10.21.3.4"))
    with pytest.raises(UnsafeURL):
        check_url("http://other.example/", settings, fixed("169.254.169.254"))


@pytest.fixture
def receiver():
    running = Receiver(default_status=200).start()
    yield running
    running.stop()


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


class Rebinding:
    """A resolver that answers a public address first and 127.0.0.1 afterwards."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return ["93.184.216.34"] if self.calls == 1 else ["127.0.0.1"]


def test_dns_rebinding_is_refused_at_connection_time(receiver):
    resolver = Rebinding()
    url = f"http://rebind.example:{port_of(receiver.url)}/hook"
    assert check_url(url, Settings(), resolver) == ["93.184.216.34"]  # looked fine when saved
    session = safe_session(Settings(), resolver)
    with pytest.raises(UnsafeURL, match="127.0.0.1"):
        session.post(url, json={"hello": 1}, timeout=3)
    assert receiver.requests == []


def test_the_session_connects_to_the_checked_address_with_the_urls_host(receiver):
    """Allowed, it reaches the server at the address it checked; Host stays the name."""
    port = port_of(receiver.url)
    settings = Settings((f"named.example:{port}",))
    session = safe_session(settings, fixed("127.0.0.1"))
    response = session.post(f"http://named.example:{port}/hook", data=b"x", timeout=3)
    assert response.status_code == 200
    assert receiver.requests[0].headers["host"] == f"named.example:{port}"


def test_an_address_the_allow_list_does_not_name_is_not_connected_to(receiver):
    session = safe_session(Settings())
    with pytest.raises(UnsafeURL):
        session.get(receiver.url, timeout=3)
    assert receiver.requests == []


@dataclass
class Redirector:
    """A loopback server that answers every request with a redirect to `target`."""

    target: str
    hits: list[str] = field(default_factory=list)

    def __call__(self, environ, start_response):
        self.hits.append(environ["PATH_INFO"])
        return Response(status=302, headers={"Location": self.target})(environ, start_response)

    def start(self) -> str:
        class Quiet(WSGIRequestHandler):
            def log_request(self, *args, **kwargs) -> None:
                pass

        self._server = make_server("127.0.0.1", 0, self, threaded=True, request_handler=Quiet)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return f"http://127.0.0.1:{self._server.port}/start"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize("allow_redirects", [True, False])
def test_a_redirect_to_a_refused_address_is_not_followed(receiver, allow_redirects):
    redirector = Redirector(target=receiver.url)
    start = redirector.start()
    try:
        session = safe_session(Settings((f"127.0.0.1:{port_of(start)}",)))
        if allow_redirects:
            with pytest.raises(UnsafeURL, match="loopback"):
                session.get(start, timeout=3)
        else:
            assert session.get(start, timeout=3, allow_redirects=False).status_code == 302
        assert redirector.hits == ["/start"]
        assert receiver.requests == []
        # a plain session would have followed it: the test's servers really do redirect
        assert requests.get(start, timeout=3).status_code == 200
        assert len(receiver.requests) == 1
    finally:
        redirector.stop()


def test_a_redirect_to_an_allowed_address_is_followed(receiver):
    redirector = Redirector(target=receiver.url)
    start = redirector.start()
    try:
        settings = Settings((f"127.0.0.1:{port_of(start)}", f"127.0.0.1:{port_of(receiver.url)}"))
        assert safe_session(settings).get(start, timeout=3).status_code == 200
        assert len(receiver.requests) == 1
    finally:
        redirector.stop()


def test_proxies_from_the_environment_are_not_used(monkeypatch, receiver):
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "")
    session = safe_session(Settings((f"127.0.0.1:{port_of(receiver.url)}",)))
    assert session.get(receiver.url, timeout=3).status_code == 200


def test_a_name_that_does_not_resolve_now_is_a_connection_error_when_calling():
    """Refused when saved; when a call goes out, retried like any connection error (a DNS
    failure often passes), never taken for a permanent refusal."""

    def nothing(host: str, port: int) -> list[str]:
        return []

    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://gone.example/hook", Settings(), nothing)
    with pytest.raises(requests.ConnectionError):
        safe_session(Settings(), nothing).get("https://gone.example/hook", timeout=3)
