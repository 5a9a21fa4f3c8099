"""Connections over the API: the secret once, never the credentials, another owner's
connection refused (404 on its routes, 422 as a job's channel)."""

from __future__ import annotations

from sqlalchemy import select, text

from dispatcher.extensions import db
from dispatcher.models import MicroJob

from .helpers import assert_problem

API_KEY = "sbx_api-test-key-kept-secret"


def create(api, **body) -> dict:
    response = api.post(
        "/api/v1/connections",
        json={"adapter": "sandbox", "label": "Second", "credentials": {"api_key": API_KEY}, **body},
    )
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_create_answers_the_secret_once_and_never_the_credentials(api):
    made = create(api)
    assert made["webhook_secret"].startswith("whsec_")
    assert made["webhook_url"].endswith(f"/webhooks/sandbox/{made['webhook_url'].split('/')[-1]}")
    assert API_KEY not in str(made)
    listed = api.get("/api/v1/connections").get_data(as_text=True)
    assert made["webhook_secret"] not in listed and API_KEY not in listed
    assert '"Second"' in listed
    raw = str(db.session.execute(text("SELECT * FROM connections")).all())
    assert API_KEY not in raw and made["webhook_secret"] not in raw
    rotated = api.post(f"/api/v1/connections/{made['id']}/rotate").get_json()
    assert rotated["webhook_secret"] != made["webhook_secret"]


def test_bad_input_is_422(api):
    response = api.post(
        "/api/v1/connections", json={"adapter": "nosuch", "credentials": {"api_key": "k"}}
    )
    assert "adapter" in assert_problem(response, 422)["errors"]["json"]
    response = api.post("/api/v1/connections", json={"adapter": "sandbox"})
    assert "api_key required" in str(assert_problem(response, 422))


def test_another_owners_connection_is_404_and_422_as_a_channel(api, bob_api, new_job):
    made = create(api)
    for method, path in [
        ("post", f"/api/v1/connections/{made['id']}/check"),
        ("post", f"/api/v1/connections/{made['id']}/rotate"),
        ("delete", f"/api/v1/connections/{made['id']}"),
    ]:
        assert_problem(getattr(bob_api, method)(path), 404)
    assert made["label"] not in bob_api.get("/api/v1/connections").get_data(as_text=True)

    bobs_goal = bob_api.post("/api/v1/goals", json={"title": "Bob's", "budget_cents": 1000})
    bobs_job = bob_api.post(
        f"/api/v1/goals/{bobs_goal.get_json()['id']}/jobs", json={"title": "his"}
    ).get_json()
    response = bob_api.post(
        f"/api/v1/jobs/{bobs_job['id']}/delegate", json={"connection_id": made["id"]}
    )
    assert "connection_id" in assert_problem(response, 422)["errors"]["json"]
    assert db.session.get(MicroJob, bobs_job["id"]).connection_id is None

    mine = new_job("mine")
    response = api.post(f"/api/v1/jobs/{mine['id']}/delegate", json={"connection_id": made["id"]})
    assert response.status_code == 200
    assert (response.json["connection_id"], response.json["channel"]) == (made["id"], "sandbox")


def test_delegating_to_a_channel_without_a_connection_is_422(bob_api):
    db.session.execute(text("DELETE FROM connections"))
    db.session.commit()
    goal = bob_api.post("/api/v1/goals", json={"title": "g", "budget_cents": 1000}).get_json()
    job = bob_api.post(f"/api/v1/goals/{goal['id']}/jobs", json={"title": "x"}).get_json()
    response = bob_api.post(f"/api/v1/jobs/{job['id']}/delegate", json={"channel": "sandbox"})
    assert "connect it first" in str(assert_problem(response, 422))
    assert db.session.scalars(select(MicroJob.mode)).one() == "undecided"
