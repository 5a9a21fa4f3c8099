"""Issue 11 part 1 leftovers: what a waiting job waits for, shown the same on its row, its
goal page and Today; and what a live page fetches when one of a goal's jobs moves (parents'
summaries, waiting lines) or re-reads (Today's regions)."""

from __future__ import annotations

import re

from fakes.work import deliver, place

from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.planning import tree

from .conftest import page

WAITING = re.compile(r'data-waiting-of="(\d+)" data-goal="\d+">(waiting [^<]+)<')


def _out(goal, parent, title: str):
    job = tree.add_job(
        goal, title=title, parent=parent, mode="delegate", channel="sandbox", price_cents=200
    )
    dispatch = dispatch_service.dispatch_job(job)
    place(dispatch)
    db.session.commit()
    return job, dispatch


def test_a_waiting_job_says_so_on_its_row_goal_page_and_today(client, ann, goal):
    job, _ = _out(goal, None, "Write a guest post")
    texts = {}
    for name, url in [
        ("goal", f"/goals/{goal.id}"),
        ("job", f"/jobs/{job.id}"),
        ("today", "/today"),
    ]:
        found = WAITING.findall(page(client.get(url)))
        assert [job_id for job_id, _ in found] == [str(job.id)], name
        texts[name] = found[0][1]
    assert len(set(texts.values())) == 1
    assert re.fullmatch(r"waiting for a worker to take it since \d\d:\d\d", texts["goal"])


def test_the_rows_endpoint_gives_summaries_and_waiting_lines(client, ann, goal):
    parent = tree.add_job(goal, title="Publish 3 guest posts")
    first, first_order = _out(goal, parent, "Post one")
    second, _ = _out(goal, parent, "Post two")
    tree.add_job(goal, title="Post three", parent=parent)
    deliver(first_order, "sub-1")

    response = client.get(
        f"/live/goals/{goal.id}/rows?ids={parent.id},{first.id},{second.id},x,999999"
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    rows = response.get_json()["rows"]
    assert rows[str(parent.id)] == {"summary": "1 out, 1 to review, 1 to do", "class": "review"}
    assert rows[str(first.id)] == {"waiting": ""}  # delivered: waits for the owner, not them
    assert rows[str(second.id)]["waiting"].startswith("waiting for a worker to take it since ")
    assert set(rows) == {str(parent.id), str(first.id), str(second.id)}


def test_the_rows_of_another_owners_goal_are_not_found(client, bob_client, goal):
    assert bob_client.get(f"/live/goals/{goal.id}/rows?ids=1").status_code == 404


def test_the_summary_chips_and_today_lists_are_marked_for_live_updates(client, ann, goal):
    parent = tree.add_job(goal, title="Publish 3 guest posts")
    _out(goal, parent, "Post one")
    goal_page = page(client.get(f"/goals/{goal.id}"))
    assert re.search(
        rf'<span class="chip summary out" data-summary-of="{parent.id}" data-goal="{goal.id}">'
        r"1 out</span>",
        goal_page,
    )
    today = page(client.get("/today"))
    for region in ("planned", "overdue", "review", "out"):
        assert f'<section class="card" id="{region}" data-live-region>' in today
