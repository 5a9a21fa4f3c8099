"""The plan page's script in a real browser: drag and drop, keyboard moves, move buttons and
in-place renaming (its fetches carry the CSRF token: the live server has CSRF on), checked
against the database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from browser.conftest import wait_for_js
from dispatcher.extensions import db
from dispatcher.models import Goal, MicroJob
from dispatcher.planning import tree
from dispatcher.planning.outline import add_outline

pytestmark = pytest.mark.browser


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


def test_drag_keyboard_buttons_and_rename(page, owner, goal, log_in, shot):
    add_outline(goal, "A\n  a1\n  a2\nB\nC")
    goal_id = goal.id
    log_in(page, owner)

    page.goto(f"/goals/{goal_id}/plan")
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
    wait_for_js(
        page,
        "document.querySelectorAll('ul.tree > li.node')[1].querySelector('[data-title]')"
        ".textContent === 'B'",
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
    wait_for_js(page, "document.querySelector('[data-plan-live]').textContent.includes('Renamed')")
    db.session.expire_all()
    renamed = db.session.scalars(select(MicroJob).where(MicroJob.title == "First pitch")).one()
    assert renamed.goal_id == goal_id
    assert page.offsite_requests == [] and page.js_errors == []
    shot(page)
