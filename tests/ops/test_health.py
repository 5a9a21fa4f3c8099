"""/healthz, /readyz and who may read /metrics (issue 13)."""

from __future__ import annotations

import pytest

from dispatcher import create_app


def other(config):
    """A second app of the test (another database or setting); its engine is disposed when
    the test ends, so no connection to the test database is left for the garbage collector."""
    app = create_app(config)
    _made.append(app)
    return app


_made: list = []


@pytest.fixture(autouse=True)
def _dispose_other_apps():
    yield
    from dispatcher.extensions import db

    while _made:
        with _made.pop().app_context():
            db.session.remove()
            db.engine.dispose()


def test_healthz_answers_without_asking_anything(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}


def test_readyz_is_ready_with_database_redis_and_migrations(client):
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    checks = answer.get_json()["checks"]
    assert {name for name, c in checks.items() if c["ok"]} == {"database", "redis", "migrations"}


def test_readyz_names_unapplied_migrations(app_config, tmp_path):
    fresh = {**app_config, "database_url": f"sqlite:///{tmp_path / 'never-migrated.db'}"}
    app = other(fresh)
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503
    body = answer.get_json()
    assert answer.mimetype == "application/problem+json"
    assert "migrations" in body["detail"] and "database at none" in body["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_names_an_unreachable_redis(app_config, tmp_path):
    gone = {**app_config, "redis_url": f"unix://{tmp_path / 'no-such-redis.sock'}"}
    answer = other(gone).test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.get_json()["detail"].startswith("redis: unreachable")


def test_readyz_names_an_unreachable_database(app_config, tmp_path):
    broken = {**app_config, "database_url": f"sqlite:///{tmp_path / 'no-dir' / 'x.db'}"}
    answer = other(broken).test_client().get("/readyz")
    assert answer.status_code == 503
    assert "database: unreachable" in answer.get_json()["detail"]


def test_metrics_answer_loopback_and_refuse_others(client):
    local = client.get("/metrics")
    assert local.status_code == 200
    text = local.get_data(as_text=True)
    assert 'dispatcher_queue_depth{queue="dispatch",state="queued"} 0.0' in text
    assert 'dispatcher_breaker_state{adapter="sandbox",connection="",state="closed"} 1.0' in text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names and all(name.startswith("dispatcher_") for name in names), names
    remote = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 403


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 403), ("Bearer wrong", 403), ("Bearer s3cret-token", 200)],
)
def test_metrics_token_is_required_when_set(app_config, header, status):
    app = other({**app_config, "metrics_token": "s3cret-token"})
    headers = {"Authorization": header} if header else {}
    answer = app.test_client().get(
        "/metrics", headers=headers, environ_base={"REMOTE_ADDR": "203.0.113.9"}
    )
    assert answer.status_code == status
