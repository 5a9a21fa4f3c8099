"""The plan page's script in a real browser (Debian's chromium through Playwright): drag and
drop, keyboard moves, move buttons and in-place renaming, checked against the database."""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from dispatcher.extensions import db
from dispatcher.models import Goal, MicroJob
from dispatcher.planning import tree
from dispatcher.planning.outline import add_outline

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def in_browser(app, live_server, owner, user_loader):
    """Run `scenario(page)` in chromium, logged in as `owner`.

    Playwright's sync API cannot start in a thread where another test module's session-wide
    browser already runs its event loop, so the scenario gets a thread (and an app context)
    of its own; its failures are re-raised here.
    """
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    cookie = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": str(owner.id), "_fresh": True}
    )

    def run(scenario):
        with app.app_context(), sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            try:
                context = browser.new_context()
                context.add_cookies([{"name": "session", "value": cookie, "url": live_server}])
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                scenario(page)
                assert errors == []
            finally:
                browser.close()
                db.session.remove()

    def _in_browser(scenario) -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(run, scenario).result(timeout=120)

    return _in_browser


def layout(goal_id: int) -> list[tuple[int, str]]:
    db.session.expire_all()
    goal = db.session.get(Goal, goal_id)
    return [(n.depth, n.job.title) for n in tree.walk(tree.goal_tree(goal))]


def dom_layout(page) -> list[tuple[int, str]]:
    return [
        tuple(x)
        for x in page.eval_on_selector_all(
            "li.node",
            """els => els.map(el => {
                let depth = 0, up = el.parentElement.closest('li.node');
                while (up) { depth++; up = up.parentElement.closest('li.node'); }
                return [depth, el.querySelector('[data-title]').textContent];
            })""",
        )
    ]


def row(page, title: str):
    return page.locator("li.node > .row", has=page.locator(f"[data-title]:text-is('{title}')"))


def test_drag_keyboard_buttons_and_rename(in_browser, live_server, goal, output_dir):
    add_outline(goal, "A\n  a1\n  a2\nB\nC")
    goal_id = goal.id
    in_browser(
        lambda page: drag_keyboard_buttons_and_rename(page, live_server, goal_id, output_dir)
    )


def drag_keyboard_buttons_and_rename(page, live_server, goal_id, output_dir):
    page.goto(f"{live_server}/goals/{goal_id}/plan")
    assert dom_layout(page) == [(0, "A"), (1, "a1"), (1, "a2"), (0, "B"), (0, "C")]

    # drag C into the middle of B's row: C becomes B's child
    box = row(page, "B").bounding_box()
    row(page, "C").drag_to(row(page, "B"), target_position={"x": 40, "y": box["height"] / 2})
    page.wait_for_selector("li.node li.node [data-title]:text-is('C')")
    expected = [(0, "A"), (1, "a1"), (1, "a2"), (0, "B"), (1, "C")]
    assert dom_layout(page) == expected
    assert layout(goal_id) == expected

    # drag a2 onto the top edge of A: before A, at the top level
    row(page, "a2").drag_to(row(page, "A"), target_position={"x": 40, "y": 1})
    page.wait_for_selector("ul.tree > li.node:first-child > .row [data-title]:text-is('a2')")
    expected = [(0, "a2"), (0, "A"), (1, "a1"), (0, "B"), (1, "C")]
    assert layout(goal_id) == expected

    # keyboard: focus B, Alt+Up moves it above A; Alt+Right indents it under a2
    page.locator("[data-title]:text-is('B')").focus()
    page.keyboard.press("Alt+ArrowUp")
    page.wait_for_function(
        "document.querySelectorAll('ul.tree > li.node')[1].querySelector('[data-title]')"
        ".textContent === 'B'"
    )
    page.keyboard.press("Alt+ArrowRight")
    page.wait_for_selector("li.node li.node [data-title]:text-is('B')")
    expected = [(0, "a2"), (1, "B"), (2, "C"), (0, "A"), (1, "a1")]
    assert dom_layout(page) == expected
    assert layout(goal_id) == expected

    # the outdent button (the same buttons work without the script)
    row(page, "B").hover()
    row(page, "B").locator("button[aria-label='Outdent']").click()
    page.wait_for_selector("ul.tree > li.node > .row [data-title]:text-is('B')")
    assert layout(goal_id) == [(0, "a2"), (0, "B"), (1, "C"), (0, "A"), (1, "a1")]

    # a refused move shows the server's reason and changes nothing
    page.locator("[data-title]:text-is('a2')").focus()
    page.keyboard.press("Alt+ArrowLeft")
    page.wait_for_selector(".flash.error:has-text('already at the top level')")

    # rename in place: Enter opens the editor, Enter saves
    page.locator("[data-title]:text-is('a1')").focus()
    page.keyboard.press("Enter")
    page.locator("input.edit").fill("First pitch")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-title]:text-is('First pitch')")
    page.wait_for_function(
        "document.querySelector('[data-plan-live]').textContent.includes('Renamed')"
    )
    db.session.expire_all()
    renamed = db.session.scalars(select(MicroJob).where(MicroJob.title == "First pitch")).one()
    assert renamed.goal_id == goal_id
    page.screenshot(path=str(output_dir / "plan-tree.png"), full_page=True)
