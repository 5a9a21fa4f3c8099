"""Ownership, generated from the URL map: every route that takes an id, every method, tried
by a second owner on the first owner's rows, must answer 404 and change nothing.

A new route is covered as soon as it exists: its ids are filled in from ID_FIELDS, and a
route whose id names no known row fails the test until one is added there.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select, text

from adapters.email import mailbox_dir
from dispatcher import connections
from dispatcher.auth_tokens import issue_token
from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.models import Dispatch, InboundEvent
from dispatcher.people import directory
from dispatcher.planning import cadence as cadences
from dispatcher.planning.playbooks import shipped_playbooks
from dispatcher.teammates import files

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
#: a body that passes the usual form and JSON checks, so only ownership can refuse
BODY = {"title": "Taken over", "name": "Bob's", "value": "3", "note": "x", "reason": "x",
        "outline": "- x", "price": "1", "mode": "keep", "channel": "sandbox"}  # fmt: skip
BODY_API = {"title": "Taken over"}
#: API bodies that pass each schema (by the last part of the path, else by the resource
#: before an id); others send a title
API_BODIES = {"split": {"titles": ["a", "b"]}, "delegate": {"channel": "sandbox"},
              "revise": {"feedback": "more"}, "reject": {"reason": "no"}, "accept": {},
              "jobs": {"title": "Taken over"}, "people": {"name": "Taken over"},
              "payments": {"amount_cents": 100, "paid_before_cents": 0}}  # fmt: skip


@pytest.fixture
def anns_rows(app, ann, goal, make_job, delivered) -> dict[str, int | str]:
    """One of Ann's rows of every kind a route takes an id of."""
    parent = make_job("Launch the blog")
    delivery = delivered()
    dispatch = db.session.scalars(select(Dispatch).where(Dispatch.id == delivery.dispatch_id)).one()
    playbook = shipped_playbooks()[0]
    cadence = cadences.create_cadence(
        goal, playbook, title="Guest post", starts_on=date(2026, 1, 5), count=3
    )
    inbound = InboundEvent(
        adapter="sandbox", event_id="evt-1", body=f'{{"order_id": "{dispatch.external_id}"}}',
        status="quarantined",
    )  # fmt: skip
    db.session.add(inbound)
    question = note(parent, "teammate.question", actor="adapter:email", text="Which date?")
    # a file Ann's teammate handed in, and a letter in her local mailbox
    upload = files.path_of(delivery.assignment_id, "nonce-of-a-file-0")
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(b"work")
    delivery.raw = {**(delivery.raw or {}), "files": [{"id": "nonce-of-a-file-0", "name": "w.txt"}]}
    sandbox = connections.for_adapter(ann.id, "sandbox")
    box = mailbox_dir(app.config["SETTINGS"].instance_path, sandbox.id)
    box.mkdir(parents=True, exist_ok=True)
    (box / "brief.eml").write_bytes(b"Subject: New job\r\nTo: w@example.com\r\n\r\nHello\r\n")
    db.session.commit()
    return {
        "goal_id": goal.id,
        "job_id": parent.id,
        "delivery_id": delivery.id,
        "dispatch_id": dispatch.id,
        "cadence_id": cadence.id,
        "inbound_id": inbound.id,
        "token_id": issue_token(ann, "Ann's script").token.id,
        "connection_id": connections.for_adapter(ann.id, "sandbox").id,
        "person_id": directory.create(ann.id, name="Sam Writer").id,
        "assignment_id": delivery.assignment_id,
        "key": playbook.key,
        "action": "complete",
        "event_id": question.id,
        "file_id": "nonce-of-a-file-0",
        "name": "brief.eml",
    }


def _snapshot() -> dict[str, list[tuple]]:
    db.session.expire_all()
    tables = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(text(f"SELECT * FROM {table.name} ORDER BY 1")).all()
        tables[table.name] = [tuple(row) for row in rows]
    db.session.rollback()
    return tables


def _routes(app, ids: dict) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if not re.search(r"<int:\w+>", rule.rule) or rule.endpoint.startswith("rq_dashboard."):
            continue  # the RQ dashboard is an admin's, not an owner's: test_admin_dashboard.py
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule.rule)
        found += [(method, url) for method in METHODS if method in (rule.methods or ())]
    return found


def test_a_second_owner_gets_404_everywhere_and_changes_nothing(app, anns_rows, bob_client):
    bob = bob_client
    bob_api = app.test_client()
    bob_id = db.session.execute(text("SELECT id FROM owners WHERE email='bob@example.com'")).one()
    bob_api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(bob_id[0], 'b').secret}"
    assert bob_api.get("/api/v1/goals").status_code == 200  # Bob's token is good (and touched)

    routes = _routes(app, anns_rows)
    before = _snapshot()
    answers = {}
    for method, url in routes:
        client = bob_api if url.startswith("/api/") else bob
        if url.startswith("/api/"):
            *_, resource, last = url.split("/")  # by the last part, else by the resource
            body = API_BODIES[last] if last in API_BODIES else API_BODIES.get(resource, BODY_API)
            response = client.open(url, method=method, json=body)
        else:
            response = client.open(url, method=method, data=BODY)
        answers[f"{method} {url}"] = response.status_code

    wrong = {route: status for route, status in answers.items() if status != 404}
    assert wrong == {}
    assert _snapshot() == before
    print(
        f"\nownership: {len(routes)} method+route pairs over {len({u for _, u in routes})} routes"
    )
    assert len(routes) >= 60


def test_ann_herself_reaches_the_same_routes(app, client, anns_rows):
    """The ids are real: Ann's own GETs are found, so the 404s above are about ownership."""
    for method, url in _routes(app, anns_rows):
        if method == "GET" and not url.startswith("/api/"):
            response = client.get(url)
            assert response.status_code in (200, 302), url
            assert "/login" not in response.headers.get("Location", ""), url
