from __future__ import annotations

import pytest

from dispatcher.config import EMBEDDED_REDIS, Settings
from dispatcher.errors import ConfigurationError


def test_defaults_are_embedded_and_secret_is_kept(tmp_path, monkeypatch):
    for var in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    first = Settings.from_env({"instance_path": tmp_path})
    second = Settings.from_env({"instance_path": tmp_path})
    assert first.redis_url == EMBEDDED_REDIS
    assert first.database_url == f"sqlite:///{tmp_path / 'dispatcher.db'}"
    assert first.secret_key == second.secret_key and len(first.secret_key) > 30


def test_bad_values_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(ConfigurationError, match="PORT"):
        Settings.from_env({"instance_path": tmp_path})


def test_unknown_override_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="colour"):
        Settings.from_env({"instance_path": tmp_path, "colour": "red"})
