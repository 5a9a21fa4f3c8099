"""API fixtures: two owners, each with a test client that sends their bearer token."""

from __future__ import annotations

import pytest

from dispatcher.auth_tokens import issue_token
from dispatcher.models import Owner

from .helpers import make_owner


def bearer(app, owner: Owner, name: str = "tests"):
    """A test client of `app` that authenticates as `owner` with a fresh token."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(owner, name).secret}"
    return client


@pytest.fixture
def ann(app) -> Owner:
    return make_owner("ann@example.com")


@pytest.fixture
def bob(app) -> Owner:
    return make_owner("bob@example.com")


@pytest.fixture
def api(app, client, ann):
    """Ann's client: the `client` fixture with her token on every request."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(ann, 'tests').secret}"
    return client


@pytest.fixture
def bob_api(app, bob):
    return bearer(app, bob)


@pytest.fixture
def goal(api) -> dict:
    """One of Ann's goals, made through the API: $100 budget."""
    response = api.post(
        "/api/v1/goals", json={"title": "52 guest posts", "budget_cents": 10_000, "target": 52}
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def new_job(api, goal):
    """Make one of Ann's jobs under `goal`; returns its JSON."""

    def _new(title: str = "Write a post", **fields) -> dict:
        response = api.post(f"/api/v1/goals/{goal['id']}/jobs", json={"title": title, **fields})
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return _new
