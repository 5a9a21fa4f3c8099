"""One table-driven state machine, shared by every stateful row (job, dispatch, assignment,
delivery, inbound event, review push).

A `Machine` knows an entity's states and its transition table (action -> the states it may
start from, the state it ends in). Rows move only through `move` (in the caller's transaction,
with an Event row when the change belongs to a job) or, where two processes may race, through
`guarded_update`, one conditional UPDATE whose WHERE clause is the action's source states.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from dispatcher.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class Machine(Generic[S]):
    """States and legal moves of one entity; `attr` is the column holding the state."""

    entity: str
    states: type[S]
    table: Mapping[str, tuple[frozenset[S], S]]
    attr: str = "status"

    def allowed_actions(self, state: str) -> list[str]:
        """Actions the table allows from `state`, in table order."""
        return [name for name, (sources, _) in self.table.items() if state in sources]

    def can(self, state: str, action: str) -> bool:
        return action in self.table and state in self.table[action][0]

    def sources(self, action: str) -> frozenset[S]:
        return self.table[action][0]

    def target(self, state: str, action: str, ident: int | None = None) -> S:
        """The state `action` leads to from `state`; raises InvalidTransition when not allowed."""
        if action not in self.table or state not in self.table[action][0]:
            raise InvalidTransition(
                ident, state, action, self.allowed_actions(state), entity=self.entity
            )
        return self.table[action][1]

    def move(
        self,
        row: Any,
        action: str,
        *,
        job: Any = None,
        actor: str = "system",
        data: dict[str, Any] | None = None,
    ) -> S:
        """Move `row` by `action`; with `job`, add the Event row on the job's timeline. The
        caller commits both together."""
        before = getattr(row, self.attr)
        after = self.target(before, action, getattr(row, "id", None))
        setattr(row, self.attr, after)
        if job is not None:
            record(
                job,
                action if self.entity == "job" else f"{self.entity}.{action}",
                from_status=before,
                to_status=after,
                actor=actor,
                data={f"{self.entity}_id": row.id, **(data or {})}
                if self.entity != "job"
                else (data or {}),
            )
        return after

    def guarded_update(self, model: Any, row_id: int, action: str, **values: Any) -> bool:
        """Apply `action` to row `row_id` only if it is still in one of the action's source
        states: one conditional UPDATE, so two racing processes cannot both make the move.
        Returns whether this call made it; the caller records the Event when it did."""
        from sqlalchemy import update

        from dispatcher.extensions import db

        column = getattr(model, self.attr)
        sources, dest = self.table[action]
        written = db.session.execute(
            update(model)
            .where(model.id == row_id, column.in_([str(s) for s in sources]))
            .values({self.attr: dest, **values})
            .execution_options(synchronize_session=False)
        ).rowcount
        return written == 1

    def guarded_update_many(
        self, model: Any, rows: Mapping[int, Mapping[str, Any]], action: str, **shared: Any
    ) -> set[int]:
        """`guarded_update` for many rows in one UPDATE ... RETURNING: each row gets its own
        values (`rows`: id -> column -> value) and the `shared` ones, and the action's source
        states are still checked row by row in the WHERE clause. Returns the ids it moved."""
        from sqlalchemy import case, literal, update

        from dispatcher.extensions import db

        if not rows:
            return set()
        column = getattr(model, self.attr)
        sources, dest = self.table[action]
        own = {}
        for name in next(iter(rows.values())):
            kind = getattr(model, name).type
            own[name] = case(*[(model.id == i, literal(v[name], kind)) for i, v in rows.items()])
        moved = db.session.execute(
            update(model)
            .where(model.id.in_(list(rows)), column.in_([str(s) for s in sources]))
            .values({self.attr: dest, **own, **shared})
            .returning(model.id)
            .execution_options(synchronize_session=False)
        ).scalars()
        return set(moved)


def record(
    job: Any,
    kind: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    actor: str = "system",
    data: dict[str, Any] | None = None,
) -> None:
    """Add one Event row on `job`'s timeline, in the caller's transaction."""
    from dispatcher.extensions import db
    from dispatcher.models import Event

    db.session.add(
        Event(
            **event_values(
                job, kind, from_status=from_status, to_status=to_status, actor=actor, data=data
            )
        )
    )


def event_values(
    job: Any,
    kind: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    actor: str = "system",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one Event on `job`'s timeline (`record` adds it, `record_many` inserts
    many at once)."""
    return {
        "owner_id": job.owner_id,
        "goal_id": job.goal_id,
        "job_id": job.id,
        "kind": kind,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "data": data or {},
    }


def record_many(rows: list[dict[str, Any]]) -> None:
    """Insert Event rows (`event_values`) in one executemany, in the caller's transaction:
    a bulk import's thousands of events, without an ORM object and a RETURNING per row."""
    if not rows:
        return
    from sqlalchemy import insert

    from dispatcher.extensions import db
    from dispatcher.models import Event

    # every row has every column, so a None (from_status of a note) is a NULL, not a reason
    # to start another INSERT
    db.session.execute(insert(Event).execution_options(render_nulls=True), rows)


def insert_event(values: dict[str, Any]) -> Any:
    """Insert one Event row (`event_values`) with a cached Core statement, in the caller's
    transaction, and return it as an Event object that is not in the session (its id and
    columns set): a request's one Event without the unit of work's flush (issue 12). Live
    updates publish it after commit, as they do an Event a flush wrote."""
    from dispatcher.extensions import db

    row = event_row(values)
    result = db.session.connection().execute(_insert_event(), row)  # no autoflush
    return inserted_event(row, result.inserted_primary_key[0])


def event_row(values: dict[str, Any]) -> dict[str, Any]:
    """`event_values` with the time it is written: every column of the row but its id."""
    from dispatcher.models._base import utcnow

    return {**values, "created_at": utcnow()}


def inserted_event(row: dict[str, Any], event_id: int) -> Any:
    """The Event a caller inserted itself (`row`: `event_row`), as an object outside the
    session, noted for the live updates published after commit."""
    from dispatcher.extensions import db
    from dispatcher.live.publish import note_inserted
    from dispatcher.models import Event

    event = Event(id=event_id, **row)
    note_inserted(db.session(), [event])
    return event


@functools.cache
def _insert_event() -> Any:
    """Built once: a new insert() per call costs more Python than running it."""
    from sqlalchemy import insert

    from dispatcher.models import Event

    return insert(Event.__table__)
