"""The site's pages, for the tests that visit every one (CSP, accessibility, phone width):
rows for every kind of id a URL takes, and every GET page of the URL map with real ids, so
a new page is visited without a new test."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from fakes.connections import connect_sandbox
from fakes.work import deliver
from flask import current_app

from adapters.email import mailbox_dir
from dispatcher import connections
from dispatcher.dispatch import service as dispatch_service
from dispatcher.extensions import db
from dispatcher.models import Assignment, Goal
from dispatcher.people import directory
from dispatcher.planning import tree
from dispatcher.planning.playbooks import shipped_playbooks
from dispatcher.teammates import links

#: GET pages that are not HTML pages (data, downloads, files). /admin/rq is rq-dashboard's
#: (a third party's pages, 404 for an owner who is not an admin: tests/ops covers it).
NOT_PAGES = re.compile(
    r"^/(api/v1/|api/openapi|static/|favicon\.ico|metrics|healthz|readyz|live/|admin/rq)"
    r"|/export\.|/yaml$|/subtree$|/files/<"
)


def seed(goal: Goal, run_jobs) -> dict[str, int | str]:
    """Rows for every kind of id a page takes: a tree of jobs, a delivery waiting for review,
    a teammate's job. `run_jobs` (the fixture) drains the queues: the letter is written by them."""
    teammate = _teammate(goal, run_jobs)  # first: its run_jobs leaves the sandbox's order alone
    goal = db.session.get(Goal, teammate["goal_id"])  # as the queues left it
    parent = tree.add_job(goal, title="Launch the blog")
    tree.add_job(goal, title="Write the first post", parent=parent, mode="keep")
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
        **teammate,
    }


def _teammate(goal: Goal, run_jobs) -> dict[str, int | str]:
    """A person, an email connection (no SMTP: the local mailbox), a job sent to the person
    with its letter in the mailbox, and a live submission link (`teammate_link`, the page a
    teammate opens logged out)."""
    goal_id = goal.id
    person = directory.create(goal.owner_id, name="Wendy Writer", email="wendy@example.com",
                              rate_cents=2_500)  # fmt: skip
    connection, _ = connections.create(goal.owner_id, "email", "Email")
    db.session.commit()
    job = tree.add_job(goal, title="Write the launch post", mode="delegate", channel="email",
                       price_cents=2_500, brief="800 words about the launch.")  # fmt: skip
    job.person_id = person.id
    db.session.commit()
    dispatch_service.dispatch_job(job)
    run_jobs()  # the send task stages the letter, the outbox task writes it to the mailbox
    goal = db.session.get(Goal, goal_id)
    box = mailbox_dir(current_app.config["SETTINGS"].instance_path, connection.id)
    [letter] = sorted(path.name for path in box.glob("*.eml"))
    place = db.session.query(Assignment).filter_by(job_id=job.id).one()
    link = links.mint(place)
    db.session.commit()
    return {
        "goal_id": goal.id,
        "person_id": person.id,
        "connection_id": connection.id,
        "name": letter,
        "teammate_link": urlsplit(link).path,
    }


def site_pages(app, ids: dict) -> list[str]:
    """Every GET page of the URL map, with real ids: a new page is visited without a test."""
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or NOT_PAGES.search(rule.rule):
            continue
        if "<token>" in rule.rule:
            continue  # visited logged out: a real reset link, a real submission link
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        urls.append(url)
    return sorted(set(urls))
