"""Production mode refuses to start unsafe; `dispatcher up` prints no password."""

from __future__ import annotations

import pytest

from dispatcher.config import Settings, mask_password
from dispatcher.errors import ConfigurationError

STRONG = "q8Vd0-Lr2xWc7ZkN4aPf9sTe1yHu6bJm3oGi5nRw"
FERNET_KEY = "kX1t7bQ2wV9nL4sY8cF3hJ6mP0rT5uZ2aD7gK1eN9oM="


@pytest.fixture
def production(monkeypatch):
    for var in ("SECRET_KEY", "SANDBOX_URL", "DISPATCHER_SANDBOX", "DISPATCHER_ENCRYPTION_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DISPATCHER_ENV", "production")
    monkeypatch.setenv("DISPATCHER_ENCRYPTION_KEY", FERNET_KEY)
    return monkeypatch


def test_production_needs_a_secret_key(tmp_path, production):
    """Finding: compose shipped SECRET_KEY=change-me and nothing refused it."""
    with pytest.raises(ConfigurationError, match="SECRET_KEY must be set"):
        Settings.from_env({"instance_path": tmp_path})


@pytest.mark.parametrize("weak", ["change-me", "short-but-random-9", "a" * 40, "ab" * 20])
def test_production_refuses_weak_or_default_secrets(tmp_path, production, weak):
    production.setenv("SECRET_KEY", weak)
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        Settings.from_env({"instance_path": tmp_path})


def test_production_starts_with_a_strong_secret_and_the_sandbox_off(tmp_path, production):
    production.setenv("SECRET_KEY", STRONG)
    settings = Settings.from_env({"instance_path": tmp_path})
    assert settings.env == "production" and settings.sandbox_enabled is False


def test_production_refuses_the_sandbox_unless_asked(tmp_path, production):
    """Finding: the sandbox, with a public default webhook secret, ran with nothing warning."""
    production.setenv("SECRET_KEY", STRONG)
    production.setenv("SANDBOX_URL", "http://sandbox:5001")
    with pytest.raises(ConfigurationError, match="DISPATCHER_SANDBOX=1"):
        Settings.from_env({"instance_path": tmp_path})

    production.setenv("DISPATCHER_SANDBOX", "1")  # its secrets are each connection's own
    assert Settings.from_env({"instance_path": tmp_path}).sandbox_enabled is True


def test_production_needs_a_shared_encryption_key(tmp_path, production):
    """Each process would otherwise make its own key and could not read the credentials
    another one stored."""
    production.setenv("SECRET_KEY", STRONG)
    production.delenv("DISPATCHER_ENCRYPTION_KEY")
    with pytest.raises(ConfigurationError, match="DISPATCHER_ENCRYPTION_KEY"):
        Settings.from_env({"instance_path": tmp_path})


def test_development_keeps_its_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("DISPATCHER_ENV", raising=False)
    monkeypatch.setenv("SECRET_KEY", "change-me")
    settings = Settings.from_env({"instance_path": tmp_path})
    assert settings.env == "development" and settings.sandbox_enabled is True


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://app:s3cr3t@db:5432/dispatcher", "postgresql+psycopg://app:***@db:5432/dispatcher"),
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("sqlite:////data/dispatcher.db", "sqlite:////data/dispatcher.db"),
        ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
    ],
)  # fmt: skip
def test_urls_are_printed_without_passwords(url, shown):
    assert mask_password(url) == shown


def test_up_prints_no_password(tmp_path, monkeypatch):
    """Finding: `dispatcher up` printed DATABASE_URL with its password."""
    from dispatcher.cli import up_banner

    monkeypatch.delenv("DISPATCHER_ENV", raising=False)
    settings = Settings.from_env(
        {
            "instance_path": tmp_path,
            "database_url": "postgresql://app:s3cr3t@db/dispatcher",
            "redis_url": "redis://:hunter2@redis:6379/0",
        }
    )
    banner = up_banner(settings, 5000, "demo@example.com", "demo-pass")
    assert "s3cr3t" not in banner and "hunter2" not in banner
    assert "postgresql://app:***@db/dispatcher" in banner
