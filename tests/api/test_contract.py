"""The API says what it answers: real statuses with problem+json, strict booleans, an empty
PATCH refused, 405 with Allow."""

from __future__ import annotations

import pytest

METHODS = {"get", "post", "patch", "put", "delete"}


@pytest.fixture
def spec(client) -> dict:
    return client.get("/api/openapi.json").get_json()


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def test_no_operation_hides_its_statuses_behind_default(spec):
    """Finding: every operation declared a `default` response instead of its statuses."""
    operations = list(_operations(spec))
    assert len(operations) >= 24
    for path, method, operation in operations:
        responses = operation["responses"]
        assert "default" not in responses, (method, path)
        assert "401" in responses, (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if method in ("post", "patch"):
            assert "422" in responses, (method, path)
        assert any(code.startswith("2") for code in responses), (method, path)
    throttled = spec["paths"]["/api/v1/tokens"]["post"]["responses"]
    assert "429" in throttled


def test_error_statuses_are_problem_documents(spec):
    for name in ("UNAUTHORIZED", "NOT_FOUND", "UNPROCESSABLE_ENTITY", "TOO_MANY_REQUESTS"):
        content = spec["components"]["responses"][name]["content"]
        assert list(content) == ["application/problem+json"]


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_booleans_are_strict(api, value):
    """Finding: `"personal": 0` was taken as a boolean."""
    response = api.post("/api/v1/goals", json={"title": "Learn Spanish", "personal": value})
    assert response.status_code == 422
    assert "personal" in response.get_json()["errors"]["json"]


def test_a_real_boolean_is_taken(api):
    response = api.post("/api/v1/goals", json={"title": "Learn Spanish", "personal": True})
    assert response.status_code == 201 and response.get_json()["personal"] is True


def test_an_empty_patch_is_refused(api, goal, new_job):
    """Finding: an empty PATCH answered 200."""
    job = new_job()
    for url in (f"/api/v1/goals/{goal['id']}", f"/api/v1/jobs/{job['id']}"):
        response = api.patch(url, json={})
        assert response.status_code == 422, url
        assert response.mimetype == "application/problem+json"
    assert api.patch(f"/api/v1/goals/{goal['id']}", json={"title": "x"}).status_code == 200


def test_405_says_which_methods_are_allowed(api, client):
    """Finding: undeclared methods answered 405 without Allow."""
    response = api.put("/api/v1/goals", json={})
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}
    page = client.put("/login")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]
