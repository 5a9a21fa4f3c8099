"""The production compose file and image (issues 10 and 13): read as data, since CI may
have no Docker; `.ci/run` also runs `docker compose config` where Docker is installed."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DEV_ONLY = {"mail", "sandbox"}


def test_no_secret_is_written_in_the_compose_file():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "change-me" not in text.lower()
    for name, service in SERVICES.items():
        env = service.get("environment") or {}
        for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "DATABASE_URL"):
            assert key not in env, f"{name} sets {key} inline; it belongs in the env file"


def test_secrets_come_from_an_env_file_and_the_example_has_none():
    for name in ("web", "worker-dispatch", "scheduler", "postgres", "redis"):
        assert SERVICES[name].get("env_file"), name
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert example[key] == "", f"{key} must be empty in the example"


def test_only_the_web_port_is_published_outside_the_dev_profile():
    published = {n for n, s in SERVICES.items() if s.get("ports")}
    assert published - DEV_ONLY == {"web"}
    for name in DEV_ONLY:
        assert SERVICES[name].get("profiles") == ["dev"], name
        for port in SERVICES[name].get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "ports" not in SERVICES["sandbox"]


def test_every_service_has_a_health_check_and_data_has_volumes():
    for name, service in SERVICES.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") or (name == "migrate" and check.get("disable")), name
    assert any(v.startswith("postgres:") for v in SERVICES["postgres"]["volumes"])
    assert any(v.startswith("redis:") for v in SERVICES["redis"]["volumes"])
    assert "--appendonly yes" in " ".join(SERVICES["redis"]["command"])


def test_a_worker_per_queue_and_a_scheduler():
    from dispatcher.queues import ALL_QUEUES

    for queue in ALL_QUEUES:
        assert SERVICES[f"worker-{queue}"]["command"] == f"dispatcher worker --queue {queue}"
    assert SERVICES["scheduler"]["command"] == "dispatcher scheduler"


def test_the_image_runs_as_a_non_root_user():
    users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert users and users[-1] not in ("root", "0")
