"""Issue 11: first run leads somewhere; Playbooks in the main nav; a favicon."""

from __future__ import annotations

import re

import pytest

from .conftest import page


def _main_nav(html: str) -> str:
    return re.search(r'<nav class="main".*?</nav>', html, re.S).group(0)


def test_no_goals_leads_to_a_goal_a_playbook_and_a_channel(client, ann):
    html = page(client.get("/goals"))
    first = html[html.index('id="first-run"') :]
    assert 'href="#new-goal"' in first
    assert 'href="/playbooks"' in first and "start from a playbook" in first
    assert "paste an outline" in first
    assert 'href="/status#breakers"' in first and "connect a channel" in first
    assert "sandbox" in first  # the channels installed


def test_a_goal_without_jobs_offers_a_playbook_and_an_outline(client, goal):
    html = page(client.get(f"/goals/{goal.id}"))
    empty = html[html.index('id="no-jobs"') :]
    assert f'href="/goals/{goal.id}/playbooks"' in empty or "Start from a playbook" in empty
    assert f'action="/goals/{goal.id}/outline"' in empty

    response = client.post(f"/goals/{goal.id}/outline", data={"text": "A\n  a1\nB"})
    assert response.status_code in (302, 303)
    assert 'id="no-jobs"' not in page(client.get(f"/goals/{goal.id}"))


@pytest.mark.parametrize("path", ["/goals", "/today", "/status", "/account", "/review"])
def test_playbooks_is_in_the_main_nav_on_every_page(client, ann, path):
    response = client.get(path)
    assert response.status_code == 200, path
    assert 'href="/playbooks"' in _main_nav(page(response))


def test_playbooks_is_in_the_main_nav_on_goal_and_job_pages(client, goal, make_job):
    job = make_job()
    for path in (f"/goals/{goal.id}", f"/jobs/{job.id}", f"/goals/{goal.id}/results"):
        nav = _main_nav(page(client.get(path)))
        assert nav.count('href="/playbooks"') == 1, path
    nav = _main_nav(page(client.get("/playbooks")))
    assert nav.count(">Playbooks<") == 1 and 'aria-current="page">Playbooks' in nav


def test_favicon_is_served_and_linked(client, ann):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.mimetype == "image/vnd.microsoft.icon"
    body = response.get_data()
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert b"PNG" in body[:40]
    assert '<link rel="icon" href="/favicon.ico">' in page(client.get("/goals"))
    client.get("/logout")
    assert client.get("/favicon.ico").status_code == 200  # logged out too
