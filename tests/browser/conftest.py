"""Browser fixtures: the app served by a real threaded werkzeug server on a loopback port, and
Debian's chromium driven by Playwright (never `playwright install`: no browser download).

Fixtures for every browser test:
- `live_server`: `.url` and `.app` of the app with CSRF on, as in production. Its port is
  known before any app is built, and is the apps' `public_base_url`: the callback URL an
  order carries, so a platform's webhooks (the sandbox's, say) reach this server.
- `browser` (session) and `page`: a fresh context per test; every request that is not to
  127.0.0.1 is aborted and recorded in `page.offsite_requests`, so pages prove they need no
  network.
- `log_in(page, owner, password)`: through the /login form when the app has one, else by a
  signed session cookie.
- `shot(page, name)`: a full-page screenshot under `output_dir/browser/`; every one saved in
  the run is listed at its end.
- `axe(page)`: axe-core (tests/browser/axe, installed by npm; see `AXE`) run on the open page.
- `owner` (Ann, who logs in with PASSWORD) and `goal` (hers, with a $100 budget).
- `sandbox` (from tests/fakes): the real sandbox marketplace on loopback, for the flows that
  dispatch; a test module points the app at it by overriding `app_config`.

Mark tests `@pytest.mark.browser`. Without /usr/bin/chromium (or, for `axe`, without
`npm install --prefix tests/browser/axe`) they are skipped, except under CI (env CI set),
where a missing browser or axe-core fails them.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fakes.sandbox_fixture import sandbox  # noqa: F401  (a fixture, for the dispatch flows)
from flask import Flask
from werkzeug.serving import make_server

from dispatcher import create_app
from dispatcher.extensions import db, login_manager
from dispatcher.models import Goal, Owner
from dispatcher.planning import tree

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
#: axe-core, from `npm install --prefix tests/browser/axe` (.ci/run does it; never fetched here)
AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: where the page gets axe from: same origin, so the pages' CSP (script-src 'self') allows it,
#: served by the test's route from AXE, never by the app
AXE_PATH = "/__tests__/axe.min.js"
#: screenshots saved in this run, listed at its end (pytest_terminal_summary)
SAVED_SHOTS: list[Path] = []


@dataclass
class LiveServer:
    url: str
    app: Flask


@pytest.fixture
def live_socket():
    """The live server's listening socket, bound before the apps are built."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


@pytest.fixture
def app_config(app_config, live_socket):
    host, port = live_socket.getsockname()
    return {**app_config, "public_base_url": f"http://{host}:{port}"}


@pytest.fixture
def live_server(app, app_config, live_socket):
    """Serve the app (CSRF enabled) on `live_socket` (127.0.0.1, a free port), in a thread."""
    web = create_app({**app_config, "extra": {}})
    host, port = live_socket.getsockname()
    server = make_server(host, port, web, threaded=True, fd=live_socket.fileno())
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url=f"http://{host}:{port}", app=web)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        with web.app_context():
            db.engine.dispose()  # its own pool: close it rather than leave it to the GC


def _missing(reason: str) -> None:
    """Skip here, fail under CI: CI must run what it claims to."""
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


def loopback_page(browser, base_url: str, width: int, height: int):
    """A page in a fresh context (no cookies) whose requests off 127.0.0.1 are aborted and
    recorded in `page.offsite_requests`; close it with `page.context.close()`."""
    context = browser.new_context(
        base_url=base_url, viewport={"width": width, "height": height}, locale="en-GB"
    )
    offsite: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.offsite_requests = offsite
    return page


@pytest.fixture
def page(browser, live_server):
    page = loopback_page(browser, live_server.url, 1280, 900)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    page.context.close()


@pytest.fixture
def owner(app) -> Owner:
    """An owner who can log in with PASSWORD."""
    owner = Owner(email="ann@example.com", name="Ann", timezone="UTC")
    owner.set_password(PASSWORD)
    db.session.add(owner)
    db.session.commit()
    return owner


@pytest.fixture
def goal(owner) -> Goal:
    return tree.create_goal(
        owner.id, title="52 guest posts", metric_name="posts published", target=52,
        budget_cents=10_000, currency="USD",
    )  # fmt: skip


@pytest.fixture
def user_loader(app):
    """Use the app's user loader; until the login module registers one, a plain one that
    loads the Owner by id (restored afterwards)."""
    saved = login_manager._user_callback
    if saved is None:
        login_manager.user_loader(lambda user_id: db.session.get(Owner, int(user_id)))
    yield
    login_manager._user_callback = saved


@pytest.fixture
def log_in(live_server, user_loader):
    """Log `owner` in: through the login form when there is one, else by a signed session."""

    def _log_in(page, owner, password: str = PASSWORD) -> None:
        if "auth.login" in live_server.app.view_functions:
            page.goto("/login")
            page.fill("input[name=email]", owner.email)
            page.fill("input[name=password]", password)
            with page.expect_navigation():
                page.click("button[type=submit]")
            return
        web = live_server.app
        cookie = web.session_interface.get_signing_serializer(web).dumps(
            {"_user_id": str(owner.id), "_fresh": True}
        )
        name = web.config["SESSION_COOKIE_NAME"]
        page.context.add_cookies([{"name": name, "value": cookie, "url": live_server.url}])

    return _log_in


@pytest.fixture
def shot(output_dir, request):
    """Save a full-page screenshot named after the test (and `name`)."""
    folder = output_dir / "browser"
    folder.mkdir(parents=True, exist_ok=True)

    def _shot(page, name: str = "") -> Path:
        stem = request.node.name + (f"-{name}" if name else "")
        path = folder / f"{stem}.png"
        page.screenshot(path=str(path), full_page=True)
        SAVED_SHOTS.append(path)
        return path

    return _shot


def pytest_terminal_summary(terminalreporter) -> None:
    if SAVED_SHOTS:
        terminalreporter.section(f"screenshots ({len(SAVED_SHOTS)})")
        for path in SAVED_SHOTS:
            terminalreporter.write_line(str(path))


#: serious and critical violations, with the first few elements each one names
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4)
      .map(n => n.target.join(" ") + " :: " + n.failureSummary)}));
}"""


@pytest.fixture
def axe(live_server):
    """`axe(page)`: run axe-core on the open page; returns its serious and critical violations.

    The script is served at AXE_PATH on the page's own origin by a route of the test (the
    pages' CSP forbids inline scripts, so add_script_tag(path=...) would be refused)."""
    if not AXE.exists():
        _missing(f"{AXE} is missing: npm install --prefix tests/browser/axe")
    source = AXE.read_bytes()

    def _serve(route):
        route.fulfill(status=200, content_type="text/javascript", body=source)

    def _axe(page) -> list[dict]:
        page.route(f"{live_server.url}{AXE_PATH}", _serve)
        if not page.evaluate("typeof axe !== 'undefined'"):
            page.add_script_tag(url=AXE_PATH)
        return page.evaluate(AXE_RUN)

    return _axe


def wait_for_js(page, expression: str, timeout: float = 10.0) -> None:
    """Wait until `expression` is true in the page. Playwright's wait_for_function compiles a
    string predicate with eval inside the page, which the pages' CSP (no 'unsafe-eval')
    refuses; page.evaluate goes through the browser's own protocol instead."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            body = page.evaluate("document.body.dataset.live || ''")
            raise AssertionError(f"still false after {timeout} s: {expression} (live: {body!r})")
        page.wait_for_timeout(50)
