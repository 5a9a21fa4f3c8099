"""/api/v1/people: the directory over JSON, refusals as problem details, owner scoping."""

from __future__ import annotations

from api.helpers import assert_problem
from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Person

SAM = {"name": "Sam Writer", "email": "sam@example.com", "rate_cents": 4_000}


def test_create_list_get_and_patch(api):
    response = api.post("/api/v1/people", json=SAM)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["name"], body["email"], body["rate_cents"], body["currency"]) == (
        "Sam Writer", "sam@example.com", 4_000, "USD",
    )  # fmt: skip
    assert body["scorecard"] == {
        "jobs_given": 0, "delivered": 0, "on_time_rate": None, "first_pass_rate": None,
        "revisions_per_job": None, "average_turnaround_seconds": None,
        "average_rating": None, "paid_cents": 0,
    }  # fmt: skip
    pid = body["id"]
    assert [p["id"] for p in api.get("/api/v1/people").get_json()] == [pid]
    assert api.get(f"/api/v1/people/{pid}").get_json()["email"] == "sam@example.com"

    patched = api.patch(f"/api/v1/people/{pid}", json={"rate_cents": None, "archived": True})
    assert patched.status_code == 200
    assert (patched.get_json()["rate_cents"], patched.get_json()["archived"]) == (None, True)
    row = db.session.scalars(select(Person)).one()
    db.session.refresh(row)
    assert (row.rate_cents, row.archived) == (None, True)


def test_bad_fields_are_422_problems_naming_the_field(api):
    cases = [
        ({"email": "not-an-address"}, "email", "is not an email address"),
        ({"endpoint_url": "javascript:alert(1)"}, "endpoint_url", "http:// or https://"),
        ({"endpoint_url": "ftp://x.example.com"}, "endpoint_url", "http:// or https://"),
        ({"rate_cents": -1}, "rate_cents", ""),
        ({"rate_cents": 1.5}, "rate_cents", ""),
        ({"name": "   "}, "name", ""),
    ]
    for change, field, words in cases:
        problem = assert_problem(api.post("/api/v1/people", json={**SAM, **change}), 422)
        assert field in problem["errors"]["json"], (change, problem)
        assert words in str(problem), (change, problem)
    assert db.session.scalars(select(Person)).all() == []


def test_patch_with_a_bad_email_is_422_and_changes_nothing(api):
    pid = api.post("/api/v1/people", json=SAM).get_json()["id"]
    problem = assert_problem(api.patch(f"/api/v1/people/{pid}", json={"email": "x@"}), 422)
    assert "email" in problem["errors"]["json"]
    assert api.get(f"/api/v1/people/{pid}").get_json()["email"] == "sam@example.com"


def test_another_owners_person_is_404(app, api):
    from api.conftest import bearer
    from api.helpers import make_owner

    pid = api.post("/api/v1/people", json=SAM).get_json()["id"]
    bob = bearer(app, make_owner("bob@example.com"))
    assert_problem(bob.get(f"/api/v1/people/{pid}"), 404)
    assert_problem(bob.patch(f"/api/v1/people/{pid}", json={"name": "Mine"}), 404)
    assert bob.get("/api/v1/people").get_json() == []
    assert api.get(f"/api/v1/people/{pid}").get_json()["name"] == "Sam Writer"


def test_the_openapi_documents_people_and_payments(client, ann):
    spec = client.get("/api/openapi.json").get_json()
    assert {"get", "post"} <= set(spec["paths"]["/api/v1/people"])
    assert {"get", "patch"} <= set(spec["paths"]["/api/v1/people/{person_id}"])
    pay = "/api/v1/jobs/{job_id}/assignments/{assignment_id}/payments"
    assert "409" in spec["paths"][pay]["post"]["responses"]
    schemas = spec["components"]["schemas"]
    assert set(schemas["Payment"]["required"]) == {"amount_cents", "paid_before_cents"}
    assert "person_id" in schemas["Delegate"]["properties"]
