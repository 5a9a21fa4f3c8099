"""API tokens on the account page: listed (name, created, last used), made (shown once),
revoked; the API docs point at the page."""

from __future__ import annotations

import re

from web.conftest import page

from dispatcher.auth_tokens import issue_token


def test_account_page_makes_lists_and_revokes_tokens(app, client, ann, bob_client):
    """Finding: the API docs said tokens are made on the account page, which had no such thing."""
    made = client.post("/account/tokens", data={"name": "deploy script"})
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    secret = re.search(r"(dsp_[A-Za-z0-9_-]{20,})", page(made)).group(1)

    api = app.test_client()
    bearer = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/v1/goals", headers=bearer).status_code == 200

    listing = page(client.get("/account"))
    assert "deploy script" in listing and secret not in listing  # shown once only
    assert secret[:12] in listing  # the prefix, to tell tokens apart
    row = re.search(r'<tr id="token-(\d+)">(.*?)</tr>', listing, re.S)
    assert "never" not in row.group(2)  # it was used just now: a time is shown

    token_id = row.group(1)
    assert bob_client.post(f"/account/tokens/{token_id}/revoke").status_code == 404
    assert api.get("/api/v1/goals", headers=bearer).status_code == 200

    revoked = client.post(f"/account/tokens/{token_id}/revoke")
    assert revoked.status_code == 303
    assert api.get("/api/v1/goals", headers=bearer).status_code == 401
    assert "revoked" in page(client.get("/account"))


def test_a_token_needs_a_name(client, ann):
    response = client.post("/account/tokens", data={"name": "  "})
    assert response.status_code == 400 and "give the token a name" in page(response)
    assert "new-token" not in page(response)


def test_tokens_made_by_the_api_are_listed_as_never_used(client, ann):
    issue_token(ann, "cron job")
    listing = page(client.get("/account"))
    assert "cron job" in listing and "never" in listing


def test_api_docs_point_at_the_account_page(client):
    spec = client.get("/api/openapi.json").get_json()
    text = spec["components"]["securitySchemes"]["bearerAuth"]["description"]
    assert "/account" in text
