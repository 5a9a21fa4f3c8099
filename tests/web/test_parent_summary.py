"""Issue 11: a parent shows a summary of its leaves, the same on every page and in the API."""

from __future__ import annotations

from dispatcher import lifecycle
from dispatcher.dispatch import service as dispatch_service
from dispatcher.planning import tree

from .conftest import page

TITLE = "Publish 4 guest posts in March"
EXPECTED = "1 to review, 4 to do, 1 done"


def _march(goal):
    """1 of 6 leaves done, 1 delivered and waiting for review, 4 still to do."""
    parent = tree.add_job(goal, title=TITLE)
    kids = tree.split_job(parent, [f"Post {n}" for n in range(1, 7)])
    tree.set_mode(kids[0], "keep")
    tree.act(kids[0], "complete")
    tree.update_job(kids[1], mode="delegate", channel="sandbox", price_cents=2_500)
    dispatch_service.dispatch_job(kids[1])
    lifecycle.transition(kids[1], "dispatched", actor="test")
    lifecycle.transition(kids[1], "delivered", actor="test")
    from dispatcher.extensions import db

    db.session.commit()
    return parent


def _parent_line(html: str, job_id: int) -> str:
    start = html.index(f'id="job-{job_id}"')
    return html[start : html.index("</div>", start)]


def test_summary_counts_each_group_and_skips_cancelled():
    statuses = ["queued", "taken", "delivered", "draft", "ready", "failed", "paid", "cancelled"]
    summary = lifecycle.summarize(statuses)
    assert summary.text == "2 out, 1 to review, 1 to retry, 2 to do, 1 done"
    assert summary.total == 7
    assert lifecycle.summarize(["cancelled"]).text == "nothing to do"


def test_goal_page_shows_the_summary_not_a_childs_status(client, goal):
    parent = _march(goal)
    line = _parent_line(page(client.get(f"/goals/{goal.id}")), parent.id)
    assert EXPECTED in line
    assert ">delivered<" not in line


def test_plan_page_shows_the_summary(client, goal):
    parent = _march(goal)
    html = page(client.get(f"/goals/{goal.id}/plan"))
    start = html.index(f'id="job-{parent.id}"')
    row = html[start : html.index("</div>", start)]
    assert EXPECTED in row and ">delivered<" not in row


def test_results_page_shows_the_summary(client, goal):
    parent = _march(goal)
    html = page(client.get(f"/goals/{goal.id}/results"))
    start = html.index(f'id="rollup-{parent.id}"')
    row = html[start : html.index("</tr>", start)]
    assert EXPECTED in row and "delivered" not in row


def test_api_job_and_tree_carry_the_summary(app, goal, ann):
    from tests.api.conftest import bearer

    parent = _march(goal)
    api = bearer(app, ann)
    job = api.get(f"/api/v1/jobs/{parent.id}").get_json()
    assert job["summary"]["text"] == EXPECTED
    assert (job["summary"]["to_review"], job["summary"]["to_do"], job["summary"]["done"]) == (
        1,
        4,
        1,
    )
    assert job["summary"]["total"] == 6
    leaf = api.get(f"/api/v1/jobs/{parent.children[2].id}").get_json()
    assert leaf["summary"] is None

    (top,) = api.get(f"/api/v1/goals/{goal.id}/tree").get_json()["jobs"]
    assert top["summary"]["text"] == EXPECTED
    assert top["children"][0]["summary"] is None
