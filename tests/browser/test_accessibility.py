"""Issue 11 part 8 in a real browser: every page passes axe-core (no serious or critical
violation), fits a 390 px phone without horizontal scroll, and is saved as a screenshot at
desktop and phone width."""

from __future__ import annotations

import json

import pytest

from browser.site import seed, site_pages
from dispatcher.extensions import db
from dispatcher.security.resets import issue_reset

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
#: how much wider than the viewport the page is (0: no horizontal scroll)
OVERFLOW = "document.scrollingElement.scrollWidth - document.scrollingElement.clientWidth"
#: the elements that stick out to the right at phone width, to say what to fix
WIDE = """() => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (
    typeof e.className === "string" && e.className ? "." + e.className.split(" ").join(".") : ""
  ))"""


def _name(url: str) -> str:
    return url.strip("/").replace("/", "_") or "home"


def _check(page, url: str, axe, shot, name: str) -> tuple[list, int, list]:
    page.set_viewport_size(DESKTOP)
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, url
    violations = axe(page)
    shot(page, f"{name}-desktop")
    page.set_viewport_size(PHONE)
    page.goto(url)
    violations += [dict(v, width="phone") for v in axe(page)]
    overflow = page.evaluate(OVERFLOW)
    wide = page.evaluate(WIDE) if overflow > 0 else []
    shot(page, f"{name}-phone")
    return violations, overflow, wide


def test_every_page_passes_axe_and_fits_a_phone(
    page, owner, goal, live_server, log_in, axe, shot, run_jobs
):
    ids = seed(goal, run_jobs)
    with live_server.app.app_context():
        reset_link = "/password/reset/" + issue_reset(db.session.merge(owner))
    found: dict[str, list] = {}
    too_wide: dict[str, tuple[int, list]] = {}

    def visit(url: str, name: str) -> None:
        violations, overflow, wide = _check(page, url, axe, shot, name)
        if violations:
            found[url] = violations
        if overflow > 0:
            too_wide[url] = (overflow, wide)

    for url in ["/", "/login", "/signup", "/password/forgot"]:
        visit(url, "out-" + _name(url))
    visit(reset_link, "out-password_reset")
    visit(ids["teammate_link"], "out-teammate_page")  # the submission page needs no account
    log_in(page, owner)
    urls = site_pages(live_server.app, ids)
    assert len(urls) >= 20
    for url in urls:
        visit(url, _name(url))

    assert found == {}, json.dumps(found, indent=1)
    assert too_wide == {}, json.dumps(too_wide, indent=1)
    assert page.js_errors == [] and page.offsite_requests == []
    print(f"\naxe-core: {len(urls) + 6} pages clean; none wider than {PHONE['width']} px")
