"""Password strength: long enough, not on the list of common passwords, not trivially guessable.

The list (common-passwords.txt, shipped in the package) holds a few thousand of the passwords
people pick most; a guesser tries those first, so they fall to a handful of attempts even
when throttled. Passwords are compared lower-case.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

MIN_LENGTH = 8
MAX_LENGTH = 200
#: fewer distinct characters than this is a pattern, not a password ("aaaaaaaa", "abababab")
MIN_DISTINCT = 4


@cache
def common_passwords() -> frozenset[str]:
    text = files("dispatcher.security").joinpath("common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def _is_run(password: str) -> bool:
    """True for a run of consecutive characters either way ("12345678", "hgfedcba")."""
    steps = {ord(b) - ord(a) for a, b in zip(password, password[1:], strict=False)}
    return steps in ({1}, {-1})


def password_problem(password: str, *, email: str = "", name: str = "") -> str | None:
    """Why `password` is too weak to accept, or None if it is fine."""
    if len(password) < MIN_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"use at most {MAX_LENGTH} characters"
    lowered = password.lower()
    if len(set(lowered)) < MIN_DISTINCT or _is_run(lowered):
        return "that is a pattern anyone would guess: use a few unrelated words"
    if lowered in common_passwords():
        return "that is one of the most common passwords: use a few unrelated words"
    personal = {email.strip().lower(), email.strip().lower().partition("@")[0], name.lower()}
    if lowered in personal - {""}:
        return "do not use your email or name as the password"
    return None
