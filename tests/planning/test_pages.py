"""The plan and breakdown pages: logged-in only, owner-scoped, paste-to-split without JS."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dispatcher.extensions import db
from dispatcher.models import MicroJob
from dispatcher.planning import tree

PAGES = [
    "/goals/{goal}/plan",
    "/goals/{goal}/playbooks",
    "/goals/{goal}/playbooks/blog_post/apply",
    "/goals/{goal}/cadence",
    "/goals/{goal}/export.csv",
    "/goals/{goal}/export.json",
    "/goals/import",
    "/playbooks",
    "/playbooks/guest_post",
]


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_login(client, goal, user_loader, path):
    response = client.get(path.format(goal=goal.id))
    assert response.status_code in (302, 401)
    if response.status_code == 302:
        assert "login" in response.headers["Location"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_for_the_owner(ann, goal, path):
    assert ann.get(path.format(goal=goal.id)).status_code == 200


def test_plan_page_shows_the_tree_with_its_controls(ann, goal):
    root = tree.add_job(goal, title="Guest post <#1>")
    child = tree.split_job(root, ["Pitch"])[0]
    tree.act(child, "complete")
    page = ann.get(f"/goals/{goal.id}/plan").get_data(as_text=True)
    assert "Guest post &lt;#1&gt;" in page  # escaped
    assert f'id="job-{root.id}"' in page and f'id="job-{child.id}"' in page
    assert f'value="{child.id}:indent"' in page
    assert f'data-jobs-url="/goals/{goal.id}/jobs"' in page
    assert f"/goals/{goal.id}/jobs/{root.id}/breakdown" in page
    assert "1 of 1 jobs done (100%)" in page
    assert "js/plan-tree.js" in page


def test_paste_a_list_at_the_top_of_the_plan(ann, goal):
    response = ann.post(f"/goals/{goal.id}/outline", data={"text": "- a\n  - [x] a1\n- b"})
    assert response.status_code == 302
    titles = [n.job.title for n in tree.walk(tree.goal_tree(goal))]
    assert titles == ["a", "a1", "b"]


def test_paste_errors_keep_the_text_and_name_the_line(ann, goal):
    response = ann.post(f"/goals/{goal.id}/outline", data={"text": "  orphan\nroot"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "line 1: &#39;orphan&#39; is indented" in page
    assert "  orphan\nroot</textarea>" in page
    assert db.session.scalar(select(func.count()).select_from(MicroJob)) == 0


def test_split_a_job_on_its_breakdown_page(ann, goal):
    job = tree.add_job(goal, title="Write the post")
    assert "Split it by pasting a list" in ann.get(
        f"/goals/{goal.id}/jobs/{job.id}/breakdown"
    ).get_data(as_text=True)
    response = ann.post(
        f"/goals/{goal.id}/jobs/{job.id}/breakdown", data={"text": "Outline\nDraft\n  block 1"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/plan#job-{job.id}")
    assert [(n.depth, n.job.title) for n in tree.walk(tree.goal_tree(goal))] == [
        (0, "Write the post"),
        (1, "Outline"),
        (1, "Draft"),
        (2, "block 1"),
    ]


def test_splitting_a_started_job_is_refused_on_the_page(ann, goal):
    job = tree.add_job(goal, title="x", mode="keep")
    tree.act(job, "start")
    response = ann.post(f"/goals/{goal.id}/jobs/{job.id}/breakdown", data={"text": "a"})
    assert response.status_code == 409
    assert "cannot split" in response.get_data(as_text=True)


def test_a_job_from_another_goal_is_not_found(ann, goal, owner):
    other = tree.create_goal(owner.id, title="other")
    stranger = tree.add_job(other, title="elsewhere")
    assert ann.get(f"/goals/{goal.id}/jobs/{stranger.id}/breakdown").status_code == 404
    assert (
        ann.post(
            f"/goals/{goal.id}/outline", data={"text": "a", "parent_id": stranger.id}
        ).status_code
        == 404
    )


def test_goal_links_include_renders(app, goal):
    from flask import render_template_string

    with app.test_request_context():
        html = render_template_string('{% include "planning/_goal_links.html" %}', goal=goal)
    assert f"/goals/{goal.id}/plan" in html and f"/goals/{goal.id}/export.json" in html
