"""Owner scoping: the one place that decides which rows an owner may see (DESIGN rule 7)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.models import (
    Cadence,
    Connection,
    Delivery,
    Dispatch,
    Goal,
    MicroJob,
    OwnerPlaybook,
    Person,
)

T = TypeVar("T")


def owned(model: type[T], owner_id: int) -> Select[tuple[T]]:
    """A SELECT of `model` rows that belong to `owner_id`; every owned query starts here."""
    if model in (Goal, MicroJob, Cadence, OwnerPlaybook, Connection, Person):
        return select(model).where(model.owner_id == owner_id)
    if model in (Delivery, Dispatch):
        return (
            select(model)
            .join(MicroJob, model.job_id == MicroJob.id)
            .where(MicroJob.owner_id == owner_id)
        )
    raise TypeError(f"{model.__name__} is not an owned model")


def get_owned(model: type[T], object_id: Any, owner_id: int) -> T:
    """The row with this id if the owner owns it; NotFound otherwise (never 'forbidden')."""
    try:
        object_id = int(object_id)
    except (TypeError, ValueError):
        raise NotFound(f"{model.__name__} {object_id!r} not found") from None
    row = db.session.scalars(owned(model, owner_id).where(model.id == object_id)).first()
    if row is None:
        raise NotFound(f"{model.__name__} {object_id} not found")
    return row
