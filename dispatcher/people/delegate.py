"""A job for one named person: the channel picker offers the owner's people beside their
connections. A teammate channel (an adapter with `teammate = True`) reaches one person, so
it needs one; any other channel may name one too (the scorecard then counts that work).
The person's rate fills in the price of a job that has none."""

from __future__ import annotations

from typing import Any

from dispatcher import connections
from dispatcher.errors import InvalidChange, NotFound
from dispatcher.models import MicroJob
from dispatcher.people import directory
from dispatcher.planning import tree


def is_teammate(adapter_name: str | None) -> bool:
    """Whether the channel goes to one named person (declared on its adapter class)."""
    from dispatcher.dispatch.channels import registry

    cls = registry().classes().get(adapter_name or "")
    return bool(cls is not None and cls.teammate)


def person_terms(job: MicroJob, adapter_name: str | None, person_id: int | None) -> dict[str, Any]:
    """The job fields that naming `person_id` (or nobody) changes; raises InvalidChange
    (field `person_id`) for a person who is not the owner's, archived, or missing where the
    channel needs one."""
    if person_id is None:
        if is_teammate(adapter_name):
            raise InvalidChange("person_id", f"{adapter_name} goes to one of your people: pick who")
        return {"person_id": None}
    try:
        person = directory.active(person_id, job.owner_id)
    except NotFound as exc:
        message = str(exc) if "archived" in str(exc) else f"no person {person_id} (or not yours)"
        raise InvalidChange("person_id", message) from None
    fields: dict[str, Any] = {"person_id": person.id}
    if not job.price_cents and not job.free and person.rate_cents:
        fields["price_cents"] = person.rate_cents
    return fields


def set_mode(
    job: MicroJob,
    mode: str,
    *,
    connection_id: int | None = None,
    channel: str | None = None,
    channel_options: dict[str, Any] | None = None,
    person_id: int | None = None,
    actor: str = "owner",
) -> MicroJob:
    """tree.set_mode, with the person: delegated to them, or nobody when the job is kept."""
    if mode != "delegate":
        return tree.set_mode(job, mode, actor=actor, extra={"person_id": None})
    adapter = connections.get(connection_id, job.owner_id).adapter if connection_id else channel
    extra = person_terms(job, adapter, person_id)
    return tree.set_mode(
        job,
        mode,
        channel,
        channel_options,
        connection_id=connection_id,
        actor=actor,
        extra=extra,
    )
