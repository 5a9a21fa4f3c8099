"""The channel picker offers people: a job for one named person, a teammate channel that
needs one, the person's rate as the price of a job without one, and the person carried onto
the order's assignment (what the scorecard reads)."""

from __future__ import annotations

import pytest
from api.helpers import assert_problem

from adapters.base import AdapterRegistry
from adapters.sandbox import SandboxAdapter
from dispatcher import connections
from dispatcher.dispatch import service as dispatch_service
from dispatcher.errors import InvalidChange
from dispatcher.extensions import db
from dispatcher.models import Assignment
from dispatcher.people import directory

from .conftest import TeammateSandbox, page, reload


@pytest.fixture
def mate(app, ann):
    """A teammate channel beside the sandbox, and Ann's connection of it."""
    app.extensions["dispatcher.adapters"] = AdapterRegistry(
        app.config["SETTINGS"], classes={"sandbox": SandboxAdapter, "mate": TeammateSandbox}
    )
    connection, _ = connections.create(ann.id, "mate", "Team", {"api_key": "sbx_x"}, {})
    db.session.commit()
    return connection


def _sandbox(ann):
    return connections.for_adapter(ann.id, "sandbox")


def test_the_goal_page_offers_people_beside_the_channels(client, goal, make_job, person):
    job = make_job()
    sam = person(rate_cents=4_000)
    html = page(client.get(f"/goals/{goal.id}"))
    assert (
        f'id="j{job.id}-person"' in html and f'<option value="{sam.id}">Sam Writer</option>' in html
    )


def test_delegating_to_a_person_names_them_and_their_rate_fills_the_price(
    client, ann, goal, make_job, person
):
    sam = person(rate_cents=4_000)
    unpriced, priced = make_job("No price yet"), make_job("Priced", price_cents=2_500)
    for job in (unpriced, priced):
        response = client.post(
            f"/jobs/{job.id}/mode",
            data={"mode": "delegate", "channel": str(_sandbox(ann).id), "person": str(sam.id)},
        )
        assert response.status_code == 303, page(response)
    assert (reload(unpriced).person_id, reload(unpriced).price_cents) == (sam.id, 4_000)
    assert (reload(priced).person_id, reload(priced).price_cents) == (sam.id, 2_500)
    assert "→ sandbox · Sam Writer" in page(client.get(f"/goals/{goal.id}"))

    client.post(f"/jobs/{unpriced.id}/mode", data={"mode": "keep"})
    assert (reload(unpriced).mode, reload(unpriced).person_id) == ("keep", None)


def test_someone_elses_or_an_archived_person_is_a_form_error(
    client, ann, bob_client, goal, make_job, person
):
    from web.conftest import owner_by_email

    bobs = directory.create(owner_by_email("bob@example.com").id, name="Bob's helper")
    gone = directory.archive(person("Old Friend"), True)
    job = make_job()
    for pid, words in [(bobs.id, f"no person {bobs.id} (or not yours)"), (gone.id, "archived")]:
        data = {"mode": "delegate", "channel": str(_sandbox(ann).id), "person": str(pid)}
        response = client.post(f"/jobs/{job.id}/mode", data=data)
        assert response.status_code == 400 and words in page(response), pid
    assert (reload(job).mode, reload(job).person_id) == ("undecided", None)


def test_a_teammate_channel_needs_a_person(client, ann, mate, make_job, person):
    job = make_job(price_cents=1_000)
    response = client.post(
        f"/jobs/{job.id}/mode", data={"mode": "delegate", "channel": str(mate.id)}
    )
    assert response.status_code == 400
    assert "mate goes to one of your people: pick who" in page(response)
    assert reload(job).mode == "undecided"

    sam = person()
    data = {"mode": "delegate", "channel": str(mate.id), "person": str(sam.id)}
    assert client.post(f"/jobs/{job.id}/mode", data=data).status_code == 303
    assert (reload(job).channel, reload(job).person_id) == ("mate", sam.id)


def test_dispatch_to_a_teammate_channel_without_a_person_is_refused(ann, mate, make_job):
    job = make_job(mode="delegate", channel="mate", price_cents=1_000)
    with pytest.raises(InvalidChange, match="goes to one of your people: pick who does"):
        dispatch_service.dispatch_job(job)
    db.session.rollback()
    assert reload(job).reserved_cents == 0 and reload(job).status == "draft"


def test_the_order_carries_the_person_onto_its_assignments(ann, goal, make_job, person):
    sam = person()
    job = make_job(mode="delegate", channel="sandbox", price_cents=1_000, person_id=sam.id)
    dispatch_service.dispatch_job(job)
    (place,) = db.session.scalars(db.select(Assignment).where(Assignment.job_id == job.id))
    assert place.person_id == sam.id


def test_the_api_delegates_to_a_person(app, api, ann, make_job, person, mate):
    sam = person(rate_cents=3_000)
    job = make_job()
    url = f"/api/v1/jobs/{job.id}/delegate"
    body = api.post(url, json={"connection_id": mate.id, "person_id": sam.id}).get_json()
    assert (body["person_id"], body["price_cents"], body["channel"]) == (sam.id, 3_000, "mate")

    other = make_job("Other")
    problem = assert_problem(
        api.post(f"/api/v1/jobs/{other.id}/delegate", json={"channel": "mate"}), 422
    )
    assert list(problem["errors"]["json"]) == ["person_id"]
    problem = assert_problem(
        api.post(
            f"/api/v1/jobs/{other.id}/delegate", json={"channel": "sandbox", "person_id": 999}
        ),
        422,
    )
    assert "no person 999" in problem["detail"]
    assert reload(other).mode == "undecided"


def test_a_persons_jobs_keep_them_while_the_order_is_out(api, ann, make_job, person):
    """The person is one of the order's terms: changing them while money is held is 409."""
    sam, kim = person(), person("Kim Coder")
    job = make_job(mode="delegate", channel="sandbox", price_cents=1_000, person_id=sam.id)
    dispatch_service.dispatch_job(job)
    url = f"/api/v1/jobs/{job.id}/delegate"
    assert_problem(api.post(url, json={"channel": "sandbox", "person_id": kim.id}), 409)
    assert reload(job).person_id == sam.id


def test_the_adapter_is_told_who_the_person_is(ann, make_job, person):
    from adapters.base import PersonRef
    from dispatcher.dispatch.channels import job_spec

    sam = person(slack_handle="@sam", endpoint_url="https://sam.example.com/in")
    job = make_job(mode="delegate", channel="sandbox", price_cents=1_000, person_id=sam.id)
    spec = job_spec(job, dispatch_service.dispatch_job(job))
    assert spec.person == PersonRef(
        name="Sam Writer", email="sam@example.com", slack_handle="@sam",
        endpoint_url="https://sam.example.com/in",
    )  # fmt: skip
    nobody = make_job("Nobody's", mode="delegate", channel="sandbox", price_cents=1_000)
    assert job_spec(nobody, dispatch_service.dispatch_job(nobody)).person is None
