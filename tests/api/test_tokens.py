"""Personal API tokens: bootstrap with a password, use, list, revoke; and every 401."""

from __future__ import annotations

import hashlib

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from dispatcher import create_app
from dispatcher.extensions import db, login_manager
from dispatcher.models import ApiToken, Owner

from .helpers import PASSWORD, assert_problem


def test_token_lifecycle_bootstrap_use_list_revoke(client, ann):
    made = client.post(
        "/api/v1/tokens", json={"email": "Ann@Example.com", "password": PASSWORD, "name": "cli"}
    )
    assert made.status_code == 201, made.get_json()
    assert made.headers["Cache-Control"] == "no-store"
    body = made.get_json()
    secret = body["token"]
    assert secret.startswith("dsp_") and len(secret) > 40
    assert body["prefix"] == secret[:12] and body["name"] == "cli"
    assert "password" not in body

    row = db.session.get(ApiToken, body["id"])
    assert row.owner_id == ann.id
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (row.prefix, row.token_hash, row.name)

    auth = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/goals", headers=auth).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, body["id"]).last_used_at is not None

    listed = client.get("/api/v1/tokens", headers=auth).get_json()
    assert [t["name"] for t in listed] == ["cli"]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert secret not in str(listed)

    revoked = client.delete(f"/api/v1/tokens/{body['id']}", headers=auth)
    assert revoked.status_code == 204
    after = client.get("/api/v1/goals", headers=auth)
    assert_problem(after, 401)
    assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]
    assert db.session.get(ApiToken, body["id"]).revoked_at is not None


def test_a_token_can_make_another_and_each_works_alone(api):
    made = api.post("/api/v1/tokens", json={"name": "second"})
    assert made.status_code == 201
    second = made.get_json()["token"]
    other = api.application.test_client()
    auth = {"Authorization": f"Bearer {second}"}
    assert other.get("/api/v1/tokens", headers=auth).status_code == 200
    assert sorted(t["name"] for t in api.get("/api/v1/tokens").get_json()) == ["second", "tests"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "ann@example.com", "password": "wrong", "name": "x"},
        {"email": "nobody@example.com", "password": PASSWORD, "name": "x"},
        {"name": "no credentials at all"},
    ],
)
def test_token_creation_refuses_bad_credentials(client, ann, body):
    response = client.post("/api/v1/tokens", json=body)
    problem = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert problem["detail"]
    assert db.session.scalar(select(db.func.count()).select_from(ApiToken)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "ann@example.com", "password": PASSWORD}, "name"),
        ({"email": "ann@example.com", "password": PASSWORD, "name": "  "}, "name"),
        ({"email": "ann@example.com", "name": "x"}, "password"),
        ({"password": PASSWORD, "name": "x"}, "email"),
        ({"email": "not-an-email", "password": PASSWORD, "name": "x"}, "email"),
        ({"email": "ann@example.com", "password": PASSWORD, "name": 7}, "name"),
    ],
)
def test_token_creation_input_errors_are_per_field(client, ann, body, field):
    problem = assert_problem(client.post("/api/v1/tokens", json=body), 422)
    assert field in problem["errors"]["json"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic YW5uOnB3", "Bearer dsp_not-a-real-token", "Bearer xyz"],
)
def test_missing_or_invalid_token_is_401_problem(client, ann, header):
    headers = {"Authorization": header} if header is not None else {}
    for method, url in [
        ("get", "/api/v1/goals"),
        ("post", "/api/v1/goals"),
        ("get", "/api/v1/jobs/1"),
        ("get", "/api/v1/deliveries"),
        ("get", "/api/v1/tokens"),
        ("delete", "/api/v1/tokens/1"),
    ]:
        response = getattr(client, method)(url, headers=headers, json={"title": "x"})
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith('Bearer realm="dispatcher"')


def test_owner_cannot_see_or_revoke_anothers_tokens(api, bob_api):
    anns = api.get("/api/v1/tokens").get_json()
    assert_problem(bob_api.delete(f"/api/v1/tokens/{anns[0]['id']}"), 404)
    assert [t["name"] for t in bob_api.get("/api/v1/tokens").get_json()] == ["tests"]
    assert api.get("/api/v1/goals").status_code == 200  # still works


@pytest.fixture
def session_login(monkeypatch):
    """Log a test client in the way Flask-Login does (a loader, and _user_id in the session).

    The web pages register the real loader; if they have not (yet), use one for this test.
    """
    if login_manager._user_callback is None:
        monkeypatch.setattr(
            login_manager, "_user_callback", lambda user_id: db.session.get(Owner, int(user_id))
        )

    def _login(client, owner: Owner) -> None:
        with client.session_transaction() as session:
            session["_user_id"] = str(owner.id)
            session["_fresh"] = True

    return _login


def test_session_reads_but_never_writes(client, ann, session_login):
    session_login(client, ann)
    assert client.get("/api/v1/goals").status_code == 200
    assert client.get("/api/v1/tokens").status_code == 200
    assert_problem(client.post("/api/v1/goals", json={"title": "via cookie"}), 401)
    assert_problem(client.delete("/api/v1/tokens/1"), 401)


@pytest.fixture
def csrf_app(app, app_config):
    """A second app on the same database with CSRF on, as in production."""
    csrf_app = create_app({**app_config, "extra": {}})
    yield csrf_app
    with csrf_app.app_context():
        db.engine.dispose()


def test_session_makes_a_token_only_with_the_csrf_token(csrf_app, ann, session_login):
    assert csrf_app.config["WTF_CSRF_ENABLED"]
    client = csrf_app.test_client()
    session_login(client, ann)
    with client.session_transaction() as session:
        session["csrf_token"] = "raw-csrf-secret"
    signed = URLSafeTimedSerializer(csrf_app.secret_key, salt="wtf-csrf-token").dumps(
        "raw-csrf-secret"
    )

    refused = client.post("/api/v1/tokens", json={"name": "from the account page"})
    assert_problem(refused, 400)
    made = client.post(
        "/api/v1/tokens", json={"name": "from the account page"}, headers={"X-CSRFToken": signed}
    )
    assert made.status_code == 201, made.get_json()

    # Bearer calls need no CSRF token: the API blueprints are exempt.
    auth = {"Authorization": f"Bearer {made.get_json()['token']}"}
    other = csrf_app.test_client()
    assert other.post("/api/v1/goals", json={"title": "by token"}, headers=auth).status_code == 201
