"""Input edges: ids out of the 64-bit range and `next=` with control characters."""

from __future__ import annotations

import re

import pytest
from web.conftest import PASSWORD, login_with, page

from dispatcher.auth_tokens import issue_token

TOO_BIG = str(2**63)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _routes_with_ids(app) -> list[tuple[str, str]]:
    """(url, method) for every rule with an <int:...> part, with every id set to 2^63."""
    found = []
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule:
            continue
        url = re.sub(r"<int:[^>]+>", TOO_BIG, rule.rule)
        url = re.sub(r"<[^>]+>", "x", url)
        found += [(url, m) for m in sorted(rule.methods or ()) if m in METHODS]
    return found


def test_every_route_answers_404_for_an_id_beyond_64_bits(app, client, ann):
    """Finding: any id above 2^63 answered 500 (OverflowError) on pages and the API."""
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(ann, 't').secret}"
    routes = _routes_with_ids(app)
    assert len(routes) > 40  # pages, API and every blueprint
    wrong = {}
    for url, method in routes:
        response = client.open(url, method=method, json={})
        if response.status_code != 404:
            wrong[f"{method} {url}"] = response.status_code
    assert wrong == {}


@pytest.mark.parametrize("big", [2**31 - 1, 2**31, 2**63 - 1, 2**63])
def test_ids_past_what_the_columns_hold_are_an_ordinary_not_found(client, ann, big):
    """PostgreSQL's INTEGER ids stop at 2^31-1: a bigger one is a 404 there too, not a
    DataError (found on PostgreSQL: 2^63-1 passed the first bound and overflowed)."""
    assert client.get(f"/goals/{big}").status_code == 404
    assert client.get(f"/api/v1/jobs/{big}").status_code in (401, 404)


@pytest.mark.parametrize("evil", ["/goals\r\nSet-Cookie: x=1", "/goals\n", "/go\x00als", "/\x7f"])
def test_next_with_control_characters_falls_back_to_the_default_page(client, ann, evil):
    """Finding: a CR/LF in next= answered 500 on log-in and on form posts."""
    client.post("/logout")
    form = client.get("/login", query_string={"next": evil})
    assert form.status_code == 200
    assert "Set-Cookie" not in page(form) and "x7f" not in page(form)
    response = client.post(
        "/login", data={"email": "ann@example.com", "password": PASSWORD, "next": evil}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/today")


def test_form_post_with_control_characters_in_next_goes_to_the_default(client, goal, make_job):
    job = make_job("Write a post")
    response = client.post(
        f"/jobs/{job.id}/act/complete", data={"next": "/today\r\nX-Evil: 1"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "\n" not in response.headers["Location"]
    assert "X-Evil" not in response.headers


def test_login_still_follows_a_plain_next(client, ann):
    client.post("/logout")
    response = login_with(client)
    assert response.status_code == 303
    assert client.get("/logout").status_code == 405
