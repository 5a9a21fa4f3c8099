"""Sign and verify webhooks the Standard Webhooks way (https://www.standardwebhooks.com/).

Headers: ``webhook-id`` (the delivery id, reused by redeliveries), ``webhook-timestamp``
(unix seconds), ``webhook-signature`` (space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``"{id}.{timestamp}.{body}"``; several entries allow key rotation). Secrets are ``whsec_`` +
base64 of the key. Both the sandbox (sending) and adapters (receiving) use this module, so a
bug here cannot hide behind a matching bug on the other side: the tests pin a published vector.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import datetime

from dispatcher.errors import ConfigurationError, SignatureError

SECRET_PREFIX = "whsec_"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
DEFAULT_TOLERANCE = 300


def generate_secret(nbytes: int = 24) -> str:
    """A fresh secret in the ``whsec_<base64>`` form senders hand out."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret (the prefix is optional, as in the spec)."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError("webhook secret is not whsec_ + base64") from exc
    if not key:
        raise ConfigurationError("webhook secret is empty")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """One ``v1,<base64>`` signature entry."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(
    secret: str | list[str],
    msg_id: str,
    timestamp: int | float | datetime | None,
    body: bytes | str,
) -> dict[str, str]:
    """The three headers for one delivery. Several secrets give several signatures (rotation)."""
    ts = _unix(timestamp)
    secrets_ = [secret] if isinstance(secret, str) else list(secret)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: " ".join(signature(s, msg_id, ts, body) for s in secrets_),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance: int | float = DEFAULT_TOLERANCE,
    now: int | float | datetime | None = None,
) -> int:
    """Raise SignatureError unless the body was signed with `secret` within `tolerance` seconds.

    Returns the verified timestamp. Header names are matched case-insensitively; any one of
    several ``v1`` signatures may match; comparison is constant-time.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = _required(lowered, ID_HEADER)
    raw_ts = _required(lowered, TIMESTAMP_HEADER)
    raw_sigs = _required(lowered, SIGNATURE_HEADER)
    try:
        ts = int(raw_ts.strip())
    except ValueError:
        raise SignatureError(f"bad {TIMESTAMP_HEADER} {raw_ts[:40]!r}: not unix seconds") from None
    current = _unix(now)
    if current - ts > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} too old: {current - ts} s ago, tolerance is {tolerance} s"
        )
    if ts - current > tolerance:
        raise SignatureError(
            f"{TIMESTAMP_HEADER} too new: {ts - current} s ahead, tolerance is {tolerance} s"
        )
    expected = signature(secret, msg_id, ts, body).encode("ascii")
    offered = [s for s in raw_sigs.split() if s.startswith("v1,")]
    if not offered:
        raise SignatureError(f"{SIGNATURE_HEADER} has no v1 signature")
    matched = False
    for candidate in offered:
        # no early exit: every candidate is compared, so timing says nothing about which
        matched |= hmac.compare_digest(candidate.encode("utf-8", "replace"), expected)
    if not matched:
        raise SignatureError("no matching signature (wrong secret or altered body)")
    return ts


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None or not value.strip():
        raise SignatureError(f"missing {name} header")
    return value


def _unix(value: int | float | datetime | None) -> int:
    if value is None:
        return int(time.time())
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)
