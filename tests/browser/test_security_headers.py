"""In the real browser: every page keeps to the Content-Security-Policy (no violation, no
script error), and the review page refuses to be framed by another site."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from browser.site import seed, site_pages
from dispatcher.extensions import db
from dispatcher.models import Delivery
from dispatcher.security.resets import issue_reset

pytestmark = pytest.mark.browser

#: report every CSP violation the page sees into window.__csp
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " @" + e.lineNumber);
});
"""


def _visit(page, url: str) -> list[str]:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    csp = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, url
    page.wait_for_load_state("load")
    return page.evaluate("window.__csp")


def test_no_page_breaks_the_content_security_policy(
    page, owner, goal, live_server, log_in, run_jobs
):
    ids = seed(goal, run_jobs)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security" in m.text else None)
    page.add_init_script(WATCH_CSP)
    with live_server.app.app_context():
        reset_link = "/password/reset/" + issue_reset(db.session.merge(owner))

    visited, violations = [], {}
    out = ["/", "/login", "/signup", "/password/forgot", reset_link, ids["teammate_link"]]
    for url in out:
        violations[url] = _visit(page, url)
        visited.append(url)
    log_in(page, owner)
    urls = site_pages(live_server.app, ids)
    assert len(urls) >= 20
    for url in urls:
        violations[url] = _visit(page, url)
        visited.append(url)

    assert {url: v for url, v in violations.items() if v} == {}
    assert console == [] and page.js_errors == [] and page.offsite_requests == []
    print(f"\nCSP: {len(visited)} pages visited, no violation")

    # The scripts that replaced inline code work: bars get their width, trees their indent.
    page.goto(f"/goals/{goal.id}/results")
    widths = page.eval_on_selector_all("[data-pct]", "els => els.map(e => e.style.width)")
    assert widths and all(w.endswith("%") for w in widths)
    page.goto(f"/goals/{goal.id}")
    depths = page.eval_on_selector_all(
        "li.node[data-depth]",
        "els => els.map(e => [e.dataset.depth, e.style.getPropertyValue('--depth').trim()])",
    )
    assert depths and all(data == css for data, css in depths)


def test_review_page_refuses_to_be_framed(page, owner, goal, live_server, log_in, run_jobs):
    ids = seed(goal, run_jobs)
    log_in(page, owner)
    asked = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/review") else None)
    evil = "http://127.0.0.1:8999/clickjack.html"  # another origin (another port)
    frame_html = f'<iframe id="f" src="{live_server.url}/review" width="800" height="600"></iframe>'
    page.route(
        evil, lambda route: route.fulfill(status=200, content_type="text/html", body=frame_html)
    )
    page.goto(evil)
    page.wait_for_timeout(1000)

    framed = [f for f in page.frames if f != page.main_frame]
    assert framed, "the iframe was not created"
    texts = []
    for frame in framed:
        try:
            texts.append(frame.evaluate("document.body ? document.body.innerText : ''"))
        except Exception:  # a refused frame may have no document to evaluate in
            texts.append("")
    assert not any("Accept" in t or "Review queue" in t for t in texts)
    # The frame asked for the page, and the browser put its error page there instead.
    assert asked == [f"{live_server.url}/review"]
    assert [f.url for f in framed] == ["chrome-error://chromewebdata/"]
    headers = page.request.get(f"{live_server.url}/review").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    # The page itself is there for the owner in a top-level window.
    page.goto(f"/deliveries/{ids['delivery_id']}")
    assert "Accept" in page.content()


def test_delivery_rows_exist_for_the_pages(goal, run_jobs):
    """The seed builds what the page list needs (guards the test above)."""
    ids = seed(goal, run_jobs)
    assert db.session.scalars(select(Delivery).where(Delivery.id == ids["delivery_id"])).one()
