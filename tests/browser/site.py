"""The site's pages, for the tests that visit every one (CSP, accessibility, phone width):
rows for every kind of id a URL takes, and every GET page of the URL map with real ids, so
a new page is visited without a new test."""

from __future__ import annotations

import re

from fakes.connections import connect_sandbox
from fakes.work import deliver

from dispatcher.dispatch import service as dispatch_service
from dispatcher.models import Goal
from dispatcher.planning import tree
from dispatcher.planning.playbooks import shipped_playbooks

#: GET pages that are not HTML pages (data, downloads, files)
NOT_PAGES = re.compile(
    r"^/(api/v1/|api/openapi|static/|favicon\.ico|metrics|healthz|readyz|live/)|/export\.|/yaml$|/subtree$"
)


def seed(goal: Goal) -> dict[str, int | str]:
    """Rows for every kind of id a page takes: a tree of jobs, a delivery waiting for review."""
    parent = tree.add_job(goal, title="Launch the blog")
    tree.add_job(parent, title="Write the first post", mode="keep")
    connect_sandbox(goal.owner_id)
    job = tree.add_job(
        goal, title="Write a guest post", mode="delegate", channel="sandbox", price_cents=2_500
    )
    dispatch = dispatch_service.dispatch_job(job)
    delivery = deliver(  # what the send task and the platform's webhook do
        dispatch, "sub-1", worker="w1", content="The post.", url="https://example.com/draft/1"
    )
    return {
        "goal_id": goal.id,
        "job_id": parent.id,
        "delivery_id": delivery.id,
        "key": shipped_playbooks()[0].key,
    }


def site_pages(app, ids: dict) -> list[str]:
    """Every GET page of the URL map, with real ids: a new page is visited without a test."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or NOT_PAGES.search(rule.rule):
            continue
        if "<token>" in rule.rule:
            continue  # visited logged out, with a real reset link
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        urls.append(url)
    return sorted(set(urls))
