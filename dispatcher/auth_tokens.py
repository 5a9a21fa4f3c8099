"""Personal API tokens: `dsp_<random>`, shown once, stored only as a SHA-256 hash.

The web account page and the API share these functions, so a token made on either side works
on both. Tokens are account credentials, not goal data: they are read here by owner id
(`ApiToken.owner_id`), beside the Owner row they belong to, not through `scoping`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.models import ApiToken, Owner
from dispatcher.models._base import utcnow

TOKEN_PREFIX = "dsp_"
#: characters of the token kept in clear for display ("dsp_" + 8)
DISPLAY_CHARS = 12
#: last_used_at is written at most this often, so reads do not all turn into writes
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A newly made token: the row, and the secret that is never shown again."""

    token: ApiToken
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_token(owner: Owner | int, name: str) -> IssuedToken:
    """Make a token for `owner` and commit; the caller shows `secret` once and forgets it."""
    owner_id = owner if isinstance(owner, int) else owner.id
    name = (name or "").strip()
    if not name:
        raise ValueError("give the token a name, so you know later what uses it")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        owner_id=owner_id,
        name=name[:120],
        prefix=secret[:DISPLAY_CHARS],
        token_hash=hash_secret(secret),
    )
    db.session.add(token)
    db.session.commit()
    return IssuedToken(token=token, secret=secret)


def list_tokens(owner_id: int, *, include_revoked: bool = True) -> list[ApiToken]:
    """The owner's tokens, newest first (no secrets: only hashes are stored)."""
    query = select(ApiToken).where(ApiToken.owner_id == owner_id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(db.session.scalars(query.order_by(ApiToken.id.desc())))


def get_token(owner_id: int, token_id: int) -> ApiToken:
    """One of the owner's tokens; NotFound for another owner's, like every owned row."""
    token = db.session.scalars(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.owner_id == owner_id)
    ).first()
    if token is None:
        raise NotFound(f"ApiToken {token_id} not found")
    return token


def revoke_token(owner_id: int, token_id: int) -> ApiToken:
    """Revoke one of the owner's tokens and commit; revoking twice keeps the first time."""
    token = get_token(owner_id, token_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return token


def verify_token(secret: str) -> Owner | None:
    """The owner a presented token belongs to, or None if it is unknown or revoked."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    digest = hash_secret(secret)
    token = db.session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if token is None or token.revoked_at is not None:
        return None
    if not hmac.compare_digest(token.token_hash, digest):
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        token.last_used_at = now
        db.session.commit()
    return token.owner


def check_login(email: str, password: str) -> Owner | None:
    """The owner with this email and password, or None (same work either way)."""
    owner = db.session.scalars(
        select(Owner).where(func.lower(Owner.email) == (email or "").strip().lower())
    ).first()
    if owner is None:
        check_password_hash(_dummy_hash(), password or "")
        return None
    return owner if owner.check_password(password or "") else None


@cache
def _dummy_hash() -> str:
    """A real hash to check when the email is unknown, so both answers take as long."""
    return generate_password_hash(secrets.token_hex(8))
