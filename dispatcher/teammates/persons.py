"""The plain copy of a Person that adapters are given (they never see ORM rows)."""

from __future__ import annotations

from adapters.base import PersonRef
from dispatcher.extensions import db
from dispatcher.models import Person


def person_ref(person_id: int | None) -> PersonRef | None:
    person = db.session.get(Person, person_id) if person_id is not None else None
    if person is None:
        return None
    return PersonRef(
        name=person.name,
        email=person.email or "",
        slack_handle=person.slack_handle or "",
        trello_handle=person.trello_handle or "",
        asana_handle=person.asana_handle or "",
        endpoint_url=person.endpoint_url or "",
    )
