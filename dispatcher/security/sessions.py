"""Ending an owner's sessions and tokens on the server, not only in one browser.

The login cookie carries "<owner id>:<session version>" (Owner.get_id); every request loads
the owner through `load_session_owner`, which refuses a version that is no longer current.
Raising the version therefore ends every session of the owner at once.
"""

from __future__ import annotations

from sqlalchemy import update

from dispatcher.extensions import db
from dispatcher.models import ApiToken, Owner
from dispatcher.models._base import utcnow
from dispatcher.security.converters import MAX_ID


def load_session_owner(session_id: str) -> Owner | None:
    """The owner a login session names, if that session has not been ended."""
    owner_part, sep, version_part = (session_id or "").partition(":")
    if not sep:
        version_part = "0"  # a session signed before versions existed: the first version
    try:
        owner_id, version = int(owner_part), int(version_part)
    except ValueError:
        return None
    owner = db.session.get(Owner, owner_id) if 0 < owner_id <= MAX_ID else None
    if owner is None or owner.session_version != version:
        return None
    return owner


def end_sessions(owner: Owner) -> None:
    """End every login session of `owner` (the caller commits)."""
    owner.session_version = (owner.session_version or 0) + 1


def revoke_all_tokens(owner_id: int) -> int:
    """Revoke every live API token of the owner (the caller commits); returns how many."""
    result = db.session.execute(
        update(ApiToken)
        .where(ApiToken.owner_id == owner_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def replace_password(owner: Owner, password: str) -> None:
    """Set a new password and end everything the old one let in: sessions and API tokens.

    Commits; the caller logs the current browser in again if it should stay in.
    """
    owner.set_password(password)
    end_sessions(owner)
    revoke_all_tokens(owner.id)
    db.session.commit()
