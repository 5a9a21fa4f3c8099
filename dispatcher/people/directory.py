"""The owner's people: add, edit, archive. The field rules live here so that the page and
the API refuse the same input with the same words."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from adapters.base import PersonRef
from dispatcher.errors import InvalidChange, NotFound
from dispatcher.extensions import db
from dispatcher.models import Person

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: what may be set on a person; everything else (owner, dates) is the service's
FIELDS = frozenset(
    {
        "name", "email", "slack_handle", "trello_handle", "asana_handle", "endpoint_url",
        "rate_cents", "currency", "notes",
    }
)  # fmt: skip
MAX_RATE = 1_000_000_000


def email_problem(value: str) -> str | None:
    """Why an email address is refused, or None (an empty one is allowed)."""
    if value and not EMAIL.match(value):
        return f"“{value}” is not an email address (like name@example.com)"
    return None


def endpoint_problem(value: str) -> str | None:
    """Why an endpoint is refused, or None: only an absolute http(s) URL with a host that is
    not inside the operator's network (outbound URL safety). A name that does not resolve now
    is kept: the webhook channel checks it again at every call."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        return "give an http:// or https:// address, like https://example.com/hooks/jobs"
    from flask import current_app

    from dispatcher.security.outbound import Unresolved, UnsafeURL, check_url

    try:
        check_url(value, current_app.config["SETTINGS"])
    except Unresolved:
        return None
    except UnsafeURL as exc:
        return str(exc)
    return None


def rate_problem(value: int | None) -> str | None:
    if value is not None and value < 0:
        return "a rate cannot be negative"
    if value is not None and value > MAX_RATE:
        return "that is more than 10,000,000.00"
    return None


def check(fields: dict[str, Any]) -> None:
    """Raise InvalidChange on the first field that breaks a rule."""
    unknown = set(fields) - FIELDS
    if unknown:
        raise TypeError(f"unknown person fields: {sorted(unknown)}")
    if "name" in fields and not (fields["name"] or "").strip():
        raise InvalidChange("name", "give the person a name")
    for name, rule in (
        ("email", email_problem),
        ("endpoint_url", endpoint_problem),
        ("rate_cents", rate_problem),
    ):
        if name in fields:
            problem = rule(fields[name])
            if problem:
                raise InvalidChange(name, problem)


def people_of(owner_id: int, *, archived: bool = False) -> list[Person]:
    """The owner's people by name; `archived` lists the archived ones instead."""
    return list(
        db.session.scalars(
            select(Person)
            .where(Person.owner_id == owner_id, Person.archived.is_(archived))
            .order_by(Person.name, Person.id)
        )
    )


def get(person_id: Any, owner_id: int) -> Person:
    """The owner's person (archived or not); NotFound for another owner's, as for any row."""
    from dispatcher.scoping import get_owned

    return get_owned(Person, person_id, owner_id)


def active(person_id: Any, owner_id: int) -> Person:
    """A person a job may go to: the owner's, and not archived."""
    person = get(person_id, owner_id)
    if person.archived:
        raise NotFound(f"{person.name} is archived: restore them first")
    return person


def create(owner_id: int, **fields: Any) -> Person:
    check({"name": fields.get("name", ""), **fields})
    person = Person(owner_id=owner_id, **_clean(fields))
    db.session.add(person)
    db.session.commit()
    return person


def update(person: Person, **fields: Any) -> Person:
    check(fields)
    for key, value in _clean(fields).items():
        setattr(person, key, value)
    db.session.commit()
    return person


def archive(person: Person, archived: bool = True) -> Person:
    """Archive (or restore) a person: they leave the pickers, their history stays."""
    person.archived = archived
    db.session.commit()
    return person


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    out = {k: (v.strip() if isinstance(v, str) else v) for k, v in fields.items()}
    if out.get("currency"):
        out["currency"] = out["currency"].upper()
    return out


def choices(owner_id: int) -> list[tuple[str, str]]:
    """(id, name) of the owner's active people, as a picker offers them (one query)."""
    rows = db.session.execute(
        select(Person.id, Person.name)
        .where(Person.owner_id == owner_id, Person.archived.is_(False))
        .order_by(Person.name, Person.id)
    )
    return [(str(pid), name) for pid, name in rows]


def person_ref(person_id: int | None) -> PersonRef | None:
    """What an adapter is told about the job's person: a plain copy (adapters never see
    rows), or None when the job names nobody."""
    person = db.session.get(Person, person_id) if person_id else None
    if person is None:
        return None
    return PersonRef(
        name=person.name,
        email=person.email,
        slack_handle=person.slack_handle,
        trello_handle=person.trello_handle,
        asana_handle=person.asana_handle,
        endpoint_url=person.endpoint_url,
    )
