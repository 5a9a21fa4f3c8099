"""Checks on an incoming order, field by field, so a client learns every mistake at once."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlsplit

DELIVERABLE_KINDS = ("text", "url", "file")
MAX_ASSIGNMENTS = 100
MAX_PRICE_CENTS = 10_000_000

#: field -> (required, default when absent)
FIELDS: dict[str, tuple[bool, Any]] = {
    "title": (True, None),
    "brief": (False, ""),
    "acceptance_criteria": (False, []),
    "deliverable_kind": (False, "text"),
    "price_cents": (True, None),
    "currency": (True, None),
    "assignments": (False, 1),
    "callback_url": (False, ""),
    "client_ref": (False, None),
    "due_date": (False, None),
}


def validate_order(body: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (clean order fields, errors by field). Errors empty means the order is valid."""
    if not isinstance(body, dict):
        return {}, {"body": "must be a JSON object"}
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in body:
        if name not in FIELDS:
            errors[name] = "unknown field"
    for name, (required, default) in FIELDS.items():
        if name not in body:
            if required:
                errors[name] = "is required"
            else:
                clean[name] = default
            continue
        try:
            clean[name] = _CHECKS[name](body[name])
        except ValueError as exc:
            errors[name] = str(exc)
    return clean, errors


def _text(value: Any, limit: int, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not allow_empty and not value.strip():
        raise ValueError("must not be empty")
    if len(value) > limit:
        raise ValueError(f"is longer than {limit} characters")
    return value


def _whole(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def _criteria(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    if len(value) > 50:
        raise ValueError("has more than 50 entries")
    return list(value)


def _kind(value: Any) -> str:
    if value not in DELIVERABLE_KINDS:
        raise ValueError(f"must be one of: {', '.join(DELIVERABLE_KINDS)}")
    return value


def _currency(value: Any) -> str:
    if not (isinstance(value, str) and len(value) == 3 and value.isalpha() and value.isupper()):
        raise ValueError("must be a three-letter ISO 4217 code such as USD")
    return value


def _callback(value: Any) -> str:
    if value is None or value == "":
        return ""
    _text(value, 2000)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL")
    return value


def _client_ref(value: Any) -> str | None:
    return None if value is None else _text(value, 200)


def _due(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a date YYYY-MM-DD or null")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("must be a date YYYY-MM-DD or null") from None


_CHECKS = {
    "title": lambda v: _text(v, 200, allow_empty=False).strip(),
    "brief": lambda v: _text(v, 20_000),
    "acceptance_criteria": _criteria,
    "deliverable_kind": _kind,
    "price_cents": lambda v: _whole(v, 0, MAX_PRICE_CENTS),
    "currency": _currency,
    "assignments": lambda v: _whole(v, 1, MAX_ASSIGNMENTS),
    "callback_url": _callback,
    "client_ref": _client_ref,
    "due_date": _due,
}
