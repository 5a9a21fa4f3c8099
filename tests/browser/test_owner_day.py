"""Issue 11 in a real browser: a dispatched job turns delivered on an open page with no
reload (live updates), and a big goal's tree opens and folds a subtree in place, with the
state kept in the URL."""

from __future__ import annotations

import socket

import pytest
from fakes.connections import connect_sandbox
from fakes.live_fixture import run_stream_server
from fakes.work import deliver, place

from browser.conftest import wait_for_js
from dispatcher import lifecycle
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.planning import tree
from dispatcher.planning.build import NewJob, create_subtree

pytestmark = pytest.mark.browser


@pytest.fixture
def stream_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock


@pytest.fixture
def app_config(app_config, stream_socket):
    host, port = stream_socket.getsockname()
    return {**app_config, "live_url": f"http://{host}:{port}"}


@pytest.fixture
def stream(app, app_config, redis_url, stream_socket):
    secret = app.config["SETTINGS"].secret_key
    with run_stream_server(redis_url, secret, app_config["public_base_url"], stream_socket) as s:
        yield s


def test_a_dispatched_job_turns_delivered_without_a_reload(page, log_in, owner, goal, stream, shot):
    connect_sandbox(owner.id)
    job = tree.add_job(
        goal, title="Write a guest post", mode="delegate", channel="sandbox", price_cents=2_500
    )
    dispatch = dispatch_service.dispatch_job(job)
    log_in(page, owner)
    page.goto(f"/goals/{goal.id}")
    chip = page.locator(f'[data-status-of="{job.id}"]')
    assert chip.inner_text() == "queued"
    assert page.locator("#review-count").inner_text() == "0"
    page.evaluate("window.notReloaded = true")
    page.wait_for_timeout(300)  # the stream connects

    # What the send task and the platform's webhook do, in another process in production.
    place(dispatch)
    db.session.commit()
    deliver(dispatch, "sub-1", content="Here")

    wait_for_js(
        page,
        f"document.querySelector('[data-status-of=\"{job.id}\"]').textContent === 'delivered'",
        timeout=2.0,
    )
    wait_for_js(page, "document.getElementById('review-count').textContent === '1'", timeout=2.0)
    assert page.evaluate("window.notReloaded") is True
    shot(page, "delivered-live")

    page.goto(f"/jobs/{job.id}")
    page.evaluate("window.notReloaded = true")
    page.wait_for_timeout(300)
    lifecycle.transition(job, "start_review", actor="owner")
    db.session.commit()
    page.wait_for_function(
        "[...document.querySelectorAll('#timeline li')]"
        ".some(li => li.textContent.includes('in review'))",
        timeout=2_000,
    )
    assert page.evaluate("window.notReloaded") is True
    assert page.js_errors == [] and page.offsite_requests == []


def test_a_big_goal_opens_and_folds_a_subtree_in_place(page, log_in, owner, goal, shot):
    specs = [
        NewJob(
            title=f"Group {t}",
            children=[
                NewJob(title=f"Step {t}.{s}", children=[NewJob(title=f"Leaf {t}.{s}.1")])
                for s in range(10)
            ],
        )
        for t in range(9)
    ]
    created = create_subtree(goal, None, specs)
    db.session.commit()
    group = created[0]
    steps = [j for j in created if j.parent_id == group.id]
    log_in(page, owner)
    page.goto(f"/goals/{goal.id}")
    assert page.locator("#tree li.node").count() == 9
    page.evaluate("window.notReloaded = true")

    page.locator(f"#job-{group.id} a.fold").click()
    page.wait_for_selector(f"#job-{steps[0].id}")
    assert page.locator("#tree li.node").count() == 19
    assert page.url.endswith(f"/goals/{goal.id}?open={group.id}")
    assert page.evaluate("window.notReloaded") is True
    shot(page, "opened")

    page.reload()
    assert page.locator("#tree li.node").count() == 19  # the URL kept it open
    page.locator(f"#job-{group.id} a.fold").click()
    wait_for_js(page, "document.querySelectorAll('#tree li.node').length === 9")
    assert "open=" not in page.url
    assert page.js_errors == [] and page.offsite_requests == []
