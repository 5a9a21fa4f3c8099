"""Issue 11: a big goal's page shows its top levels and opens the rest on demand, with what
is open kept in the URL; the page's size and queries do not grow with the tree."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event

from dispatcher.extensions import db
from dispatcher.planning import tree
from dispatcher.planning.build import NewJob, create_subtree

from .conftest import page


def _grow(goal, tops: int, steps: int = 10, leaves: int = 3):
    specs = [
        NewJob(
            title=f"Group {t}",
            children=[
                NewJob(
                    title=f"Step {t}.{s}",
                    children=[NewJob(title=f"Leaf {t}.{s}.{x}") for x in range(leaves)],
                )
                for s in range(steps)
            ],
        )
        for t in range(tops)
    ]
    created = create_subtree(goal, None, specs)
    db.session.commit()
    return created


def _row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="job-(\d+)" class="node', html)]


@pytest.fixture
def big(goal):
    """9 groups x 10 steps x 3 leaves: 369 jobs, too many to open even the second level."""
    _grow(goal, 9)
    groups = [j for j in goal.jobs if j.parent_id is None]
    return goal, groups


def test_a_big_goal_shows_its_top_level_only(client, big):
    goal, groups = big
    html = page(client.get(f"/goals/{goal.id}"))
    assert _row_ids(html) == [g.id for g in groups]
    first = groups[0]
    # Opening is a plain link that keeps the state in the URL (works without JavaScript).
    assert f'href="/goals/{goal.id}?open={first.id}#job-{first.id}"' in html
    assert "10 jobs inside" in html
    # The rollup still counts every leaf, folded or not.
    assert "0 of 270 jobs done" in html


def test_opening_a_job_shows_its_children_and_keeps_the_others(client, big):
    goal, groups = big
    first, second = groups[0], groups[1]
    steps = [c.id for c in first.children]
    html = page(client.get(f"/goals/{goal.id}?open={first.id}"))
    assert _row_ids(html) == [first.id, *steps, *(g.id for g in groups[1:])]
    # Opening another keeps the first open; folding the first keeps the second.
    assert f'href="/goals/{goal.id}?open={first.id},{second.id}#job-{second.id}"' in html
    both = page(client.get(f"/goals/{goal.id}?open={first.id},{second.id}"))
    assert f'href="/goals/{goal.id}?open={second.id}#job-{first.id}"' in both
    assert 'aria-expanded="true"' in both


def test_folding_closes_what_is_open_below(client, big):
    goal, groups = big
    first = groups[0]
    step = first.children[0]
    html = page(client.get(f"/goals/{goal.id}?open={step.id}"))  # reveals its ancestors too
    ids = _row_ids(html)
    assert first.id in ids and step.id in ids and step.children[0].id in ids
    assert f'href="/goals/{goal.id}#job-{first.id}"' in html  # fold the group: nothing open


def test_the_subtree_is_served_alone_for_the_script(client, big):
    goal, groups = big
    first = groups[0]
    response = client.get(f"/goals/{goal.id}/jobs/{first.id}/subtree?open={first.id}")
    assert response.status_code == 200
    rows = page(response)
    assert _row_ids(rows) == [c.id for c in first.children]
    assert "<html" not in rows and 'class="node depth-1' in rows


def test_the_subtree_of_another_goals_job_is_404(client, big, make_job):
    goal, groups = big
    other = tree.create_goal(goal.owner_id, title="Other")
    job = tree.add_job(other, title="Elsewhere")
    assert client.get(f"/goals/{goal.id}/jobs/{job.id}/subtree").status_code == 404


def test_nonsense_in_the_url_is_ignored(client, big):
    goal, groups = big
    response = client.get(f"/goals/{goal.id}?open=x,,-3,99999999,{groups[0].id}")
    assert response.status_code == 200
    assert groups[0].children[0].id in _row_ids(page(response))


def test_after_an_action_the_job_is_shown(client, big):
    goal, groups = big
    leaf = groups[2].children[4].children[1]
    response = client.post(f"/jobs/{leaf.id}/mode", data={"mode": "keep", "channel": ""})
    location = response.headers["Location"]
    assert location.endswith(f"?open={leaf.id}#job-{leaf.id}")
    assert leaf.id in _row_ids(page(client.get(location)))


def test_size_and_queries_do_not_grow_with_the_tree(client, goal):
    _grow(goal, 9)

    def measure():
        statements = []
        listener = lambda *args: statements.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            html = page(client.get(f"/goals/{goal.id}"))
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(html), len(statements)

    small_size, small_queries = measure()
    _grow(goal, 0)
    for group in [j for j in goal.jobs if j.parent_id is None]:
        create_subtree(
            goal,
            group,
            [NewJob(title=f"More {n}", children=[NewJob(title="x")]) for n in range(40)],
        )
    db.session.commit()
    big_size, big_queries = measure()
    assert big_queries == small_queries
    # The same nine rows are shown; only their numbers' digits may differ.
    assert abs(big_size - small_size) < 500, (small_size, big_size)


def test_folded_rollups_match_the_whole_tree(app, goal):
    """The page's cheap rollups (plain rows) agree with tree.goal_tree's on every node."""
    from dispatcher.planning import folding

    created = _grow(goal, 3, steps=3, leaves=4)
    leaves = [j for j in created if j.title.startswith("Leaf")]
    for n, leaf in enumerate(leaves):
        tree.update_job(leaf, mode="keep", estimate_minutes=5 + n)
        if n % 3 == 0:
            tree.act(leaf, "complete")
        elif n % 5 == 0:
            tree.act(leaf, "cancel")
        elif n % 4 == 0:
            tree.act(leaf, "start")
    everything = {n.job.id: n for n in tree.walk(tree.goal_tree(goal))}
    folded = folding.folded_tree(goal, [j.id for j in created])
    assert len(folded.nodes) == len(everything)
    for node in folded.nodes:
        whole = everything[node.job.id]
        assert (node.status, node.progress, node.depth) == (
            whole.status,
            whole.progress,
            whole.depth,
        )
        assert (node.summary.text if node.summary else None) == (
            whole.summary.text if whole.summary else None
        )
