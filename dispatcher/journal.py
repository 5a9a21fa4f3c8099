"""Events that are not transitions (a job created, a late delivery, a digest sent).

Transitions write their own Event in `lifecycle.transition`; everything else that belongs in
a job's or goal's timeline goes through `note`, in the caller's transaction.
"""

from __future__ import annotations

from typing import Any

from dispatcher.extensions import db
from dispatcher.models import Event, Goal, MicroJob


def note(subject: MicroJob | Goal, kind: str, *, actor: str = "system", **data: Any) -> Event:
    """Add an Event about a job or a goal; the caller commits."""
    if isinstance(subject, MicroJob):
        owner_id, goal_id, job_id = subject.owner_id, subject.goal_id, subject.id
    else:
        owner_id, goal_id, job_id = subject.owner_id, subject.id, None
    event = Event(
        owner_id=owner_id, goal_id=goal_id, job_id=job_id, kind=kind, actor=actor, data=data
    )
    db.session.add(event)
    return event
