"""The micro-job state machine: states, the transition table, and the one function that
moves a job.

Every status change goes through `transition()`, which checks the table, writes the new status
and an `Event` row in the caller's transaction. Parents' status is derived from their leaves
(`derived_status`, and `summarize` for what a page or the API shows), never stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from dispatcher.lifecycle.machine import Machine

if TYPE_CHECKING:
    from dispatcher.models import MicroJob


class Status(StrEnum):
    DRAFT = "draft"
    READY = "ready"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    TAKEN = "taken"
    DELIVERED = "delivered"
    IN_REVIEW = "in_review"
    REVISION_REQUESTED = "revision_requested"
    ACCEPTED = "accepted"
    PAID = "paid"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"


S = Status

#: action -> (states it may start from, state it ends in)
TRANSITIONS: dict[str, tuple[frozenset[Status], Status]] = {
    "make_ready": (frozenset({S.DRAFT}), S.READY),
    "back_to_draft": (frozenset({S.READY}), S.DRAFT),
    "start": (frozenset({S.DRAFT, S.READY}), S.IN_PROGRESS),
    "complete": (frozenset({S.DRAFT, S.READY, S.IN_PROGRESS}), S.DONE),
    "reopen": (frozenset({S.DONE}), S.READY),
    "queue": (frozenset({S.DRAFT, S.READY}), S.QUEUED),
    "dispatched": (frozenset({S.QUEUED}), S.DISPATCHED),
    # From here on a delegated job's status is derived from its assignments
    # (dispatch/places.py): with several places, it moves back and forth between these.
    "taken": (frozenset({S.DISPATCHED, S.DELIVERED, S.IN_REVIEW, S.REVISION_REQUESTED}), S.TAKEN),
    "delivered": (
        frozenset({S.DISPATCHED, S.TAKEN, S.REVISION_REQUESTED, S.IN_REVIEW, S.ACCEPTED}),
        S.DELIVERED,
    ),
    "start_review": (frozenset({S.DELIVERED}), S.IN_REVIEW),
    "request_revision": (
        frozenset({S.DELIVERED, S.IN_REVIEW, S.TAKEN, S.DISPATCHED, S.ACCEPTED}),
        S.REVISION_REQUESTED,
    ),
    "accept": (
        frozenset(
            {
                S.DELIVERED,
                S.IN_REVIEW,
                S.TAKEN,
                S.DISPATCHED,
                S.REVISION_REQUESTED,
                S.REJECTED,
                S.EXPIRED,
            }
        ),
        S.ACCEPTED,
    ),
    "pay": (frozenset({S.ACCEPTED}), S.PAID),
    "reject": (
        frozenset(
            {S.DELIVERED, S.IN_REVIEW, S.TAKEN, S.DISPATCHED, S.REVISION_REQUESTED, S.ACCEPTED}
        ),
        S.REJECTED,
    ),
    "withdrawn": (
        frozenset({S.TAKEN, S.DELIVERED, S.IN_REVIEW, S.REVISION_REQUESTED}),
        S.DISPATCHED,
    ),
    "fail": (frozenset({S.QUEUED, S.DISPATCHED}), S.FAILED),
    "expire": (
        frozenset(
            {S.QUEUED, S.DISPATCHED, S.TAKEN, S.DELIVERED, S.IN_REVIEW, S.REVISION_REQUESTED}
        ),
        S.EXPIRED,
    ),
    "requeue": (frozenset({S.REJECTED, S.FAILED, S.EXPIRED, S.CANCELLED}), S.QUEUED),
    "cancel": (
        frozenset(
            {
                S.DRAFT,
                S.READY,
                S.IN_PROGRESS,
                S.QUEUED,
                S.DISPATCHED,
                S.TAKEN,
                S.DELIVERED,
                S.IN_REVIEW,
                S.REVISION_REQUESTED,
                S.FAILED,
                S.EXPIRED,
                S.REJECTED,
            }
        ),
        S.CANCELLED,
    ),
}

#: Finished for good: nothing more will happen unless the owner re-queues or reopens.
FINISHED = frozenset({S.DONE, S.ACCEPTED, S.PAID, S.CANCELLED})
#: Counted as done for progress.
COMPLETE = frozenset({S.DONE, S.ACCEPTED, S.PAID})
#: Out with someone else: the platform or a teammate holds the ball.
OUT = frozenset({S.QUEUED, S.DISPATCHED, S.TAKEN, S.REVISION_REQUESTED})
#: Waiting for the owner's review.
AWAITING_REVIEW = frozenset({S.DELIVERED, S.IN_REVIEW})
#: Jobs whose money is reserved at a platform.
RESERVED = frozenset(
    {S.QUEUED, S.DISPATCHED, S.TAKEN, S.DELIVERED, S.IN_REVIEW, S.REVISION_REQUESTED, S.ACCEPTED}
)
#: Jobs whose order terms (price, assignments, channel, who does it) are fixed: money is
#: reserved or paid for them at a channel. Changing them means cancelling first.
TERMS_FIXED = RESERVED | {S.PAID}


#: The job machine; the functions below are its short names, used all over the code.
JOB: Machine[Status] = Machine("job", Status, TRANSITIONS)


def allowed_actions(status: str) -> list[str]:
    """Actions the table allows from `status`, in table order."""
    return JOB.allowed_actions(status)


def can(status: str, action: str) -> bool:
    return JOB.can(status, action)


def target(status: str, action: str, job_id: int | None = None) -> Status:
    """The state `action` leads to from `status`; raises InvalidTransition when not allowed."""
    return JOB.target(status, action, job_id)


def transition(
    job: MicroJob,
    action: str,
    *,
    actor: str = "system",
    data: dict[str, Any] | None = None,
) -> Status:
    """Move `job` by `action` and add the Event row; the caller commits both together."""
    return JOB.move(job, action, job=job, actor=actor, data=data)


@dataclass(frozen=True)
class Move:
    """A transition chosen for a job before its row exists (a bulk import): `plan` checks it
    against the table, the row is inserted already in `after` (one INSERT, no UPDATE), and
    `record_moves` writes the Events once the rows have ids."""

    action: str
    before: Status
    after: Status
    data: dict[str, Any]


def plan(
    action: str,
    *,
    start: str = S.DRAFT,
    data: dict[str, Any] | None = None,
    job_id: int | None = None,
) -> Move:
    """The move `action` makes from `start`; raises InvalidTransition when the table forbids it
    (naming `job_id`, when the job exists)."""
    return Move(action, Status(start), target(start, action, job_id), dict(data or {}))


def written(job: MicroJob, move: Move, *, actor: str = "system") -> dict[str, Any]:
    """A planned move of an existing job whose caller writes the job's status with its own
    UPDATE (issue 12: a request's Core statements instead of a flush): the job now holds
    `move.after`, set without history so no flush writes it again, and the columns of the
    move's Event are returned for the caller to insert in the same transaction."""
    from sqlalchemy.orm.attributes import set_committed_value

    from dispatcher.lifecycle.machine import event_values

    if job.status != move.before:
        raise ValueError(f"job {job.id} is {job.status}, not {move.before} as planned")
    set_committed_value(job, "status", move.after)
    return event_values(job, move.action, from_status=move.before, to_status=move.after,
                        actor=actor, data=move.data)  # fmt: skip


def record_moves(moves: Iterable[tuple[MicroJob, Move]], *, actor: str = "system") -> None:
    """The Event of each planned move, in one executemany; each job must hold `after`."""
    from dispatcher.lifecycle.machine import event_values, record_many

    rows = []
    for job, move in moves:
        if job.status != move.after:
            raise ValueError(f"job {job.id} is {job.status}, not {move.after} as planned")
        rows.append(
            event_values(job, move.action, from_status=move.before, to_status=move.after,
                         actor=actor, data=move.data)
        )  # fmt: skip
    record_many(rows)


def derived_status(leaf_statuses: Iterable[str]) -> Status:
    """A parent's status, from its leaves: done when all are complete, else the least advanced."""
    every = [Status(s) for s in leaf_statuses]
    statuses = [s for s in every if s != S.CANCELLED]
    if not statuses:
        return S.CANCELLED if every else S.DRAFT
    if all(s in COMPLETE for s in statuses):
        return S.DONE
    if any(s in AWAITING_REVIEW for s in statuses):
        return S.DELIVERED
    if any(s in OUT for s in statuses):
        return S.DISPATCHED
    if any(s in (S.IN_PROGRESS,) or s in COMPLETE for s in statuses):
        return S.IN_PROGRESS
    if all(s == S.DRAFT for s in statuses):
        return S.DRAFT
    return S.READY


#: How a parent's summary names each group of leaves, in the order it lists them.
SUMMARY_GROUPS: tuple[tuple[str, str, frozenset[Status]], ...] = (
    ("out", "out", OUT),
    ("to_review", "to review", AWAITING_REVIEW),
    ("in_progress", "in progress", frozenset({S.IN_PROGRESS})),
    ("to_retry", "to retry", frozenset({S.FAILED, S.EXPIRED, S.REJECTED})),
    ("to_do", "to do", frozenset({S.DRAFT, S.READY})),
    ("done", "done", COMPLETE),
)


@dataclass(frozen=True)
class Summary:
    """How a parent's leaves stand, group by group: one status word would hide that 1 of 6
    is under review and 5 still to do (issue 11)."""

    counts: dict[str, int]
    total: int

    @property
    def text(self) -> str:
        """ "2 out, 1 to review, 3 to do", groups in SUMMARY_GROUPS order, empty ones left out."""
        parts = [
            f"{self.counts[key]} {label}" for key, label, _ in SUMMARY_GROUPS if self.counts[key]
        ]
        return ", ".join(parts) or "nothing to do"

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "total": self.total, **self.counts}


def summarize(leaf_statuses: Iterable[str]) -> Summary:
    """The summary of a parent from its leaves' statuses; cancelled leaves are not counted."""
    tally: dict[str, int] = {}
    for status in leaf_statuses:
        tally[status] = tally.get(status, 0) + 1
    return summarize_counts(tally)


def summarize_counts(leaves_by_status: Mapping[str, int]) -> Summary:
    """`summarize` from a count of leaves per status (what a rollup over a big tree keeps)."""
    counts = {key: 0 for key, _, _ in SUMMARY_GROUPS}
    total = 0
    for raw, n in leaves_by_status.items():
        status = Status(raw)
        for key, _, members in SUMMARY_GROUPS:
            if status in members:
                counts[key] += n
                total += n
                break
    return Summary(counts=counts, total=total)
