"""Secrets at rest: Fernet with rotation (MultiFernet), keyed by ``settings.encryption_key``.

The setting holds one key or several, comma-separated: the first encrypts, every one decrypts,
so a new key is rolled in by putting it first and `rotate` re-encrypts old tokens under it.
Plaintext never leaves this module except to the caller that asked for it; errors name no
secret.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

from dispatcher.errors import ConfigurationError, DispatcherError

UNREADABLE = "a stored secret cannot be decrypted with the configured keys"


class SecretUnreadable(DispatcherError):
    """A stored secret cannot be decrypted with any configured key (a key was dropped)."""


def box_for(keys: str) -> MultiFernet:
    """A MultiFernet over comma-separated `keys` (the first encrypts)."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ConfigurationError("DISPATCHER_ENCRYPTION_KEY is empty")
    try:
        return MultiFernet([Fernet(k) for k in parts])
    except (ValueError, TypeError):
        raise ConfigurationError(
            "DISPATCHER_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64 bytes), "
            "comma-separated"
        ) from None


def _box() -> MultiFernet:
    cache = current_app.extensions.setdefault("dispatcher.secretbox", {})
    keys = current_app.config["SETTINGS"].encryption_key
    if keys not in cache:
        cache.clear()
        cache[keys] = box_for(keys)
    return cache[keys]


def seal(plaintext: str) -> str:
    """Encrypt `plaintext` under the first key; returns an ASCII token for a Text column."""
    return _box().encrypt(plaintext.encode("utf-8")).decode("ascii")


def open_(token: str) -> str:
    """Decrypt a token made by `seal` with any configured key."""
    try:
        return _box().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the configured keys"
        ) from None


def seal_json(value: dict[str, Any]) -> str:
    return seal(json.dumps(value, sort_keys=True))


def open_json(token: str) -> dict[str, Any]:
    return json.loads(open_(token)) if token else {}


def rotate(token: str) -> str:
    """Re-encrypt a token under the first key (after a new key was put first)."""
    try:
        return _box().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise SecretUnreadable(
            "a stored secret cannot be decrypted with the configured keys"
        ) from None


def mask(secret: str) -> str:
    """What a page may show of a secret: its kind prefix at most, never its body."""
    if not secret:
        return ""
    prefix = secret.split("_", 1)[0] + "_" if "_" in secret[:8] else ""
    return prefix + "••••••••"
