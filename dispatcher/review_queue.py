"""The review queue as a service: which deliveries it lists (filtered by goal and by the
connection they came through) and "accept selected at their price" in one action.

Each delivery of a batch goes through the same decision as a single accept
(dispatch/review.py: its own job lock, its own transaction, its own money checks), so a batch
can never pay what one click could not; a refusal of one never undoes the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import contains_eager

from dispatcher.dispatch import review as decisions
from dispatcher.errors import BudgetExceeded, InvalidTransition, Unsupported
from dispatcher.extensions import db
from dispatcher.models import Connection, Delivery, Goal, MicroJob, Review
from dispatcher.scoping import owned

#: What a decision may refuse for one delivery without stopping the rest of a batch.
REFUSALS = (BudgetExceeded, InvalidTransition, Unsupported, ValueError)
#: The most deliveries one batch takes (a page never lists more than a working day's).
BATCH_LIMIT = 500


class BadFilter(ValueError):
    """A filter in the queue's URL that is not a number (the page answers 400)."""


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters, as its URL query carries them (`?goal=3&channel=7`)."""

    goal_id: int | None = None
    connection_id: int | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> QueueFilter:
        return cls(goal_id=_id(args, "goal"), connection_id=_id(args, "channel"))

    @property
    def active(self) -> bool:
        return self.goal_id is not None or self.connection_id is not None

    def query(self) -> dict[str, int]:
        """The URL query that gives this filter back (for links and redirects)."""
        out = {}
        if self.goal_id is not None:
            out["goal"] = self.goal_id
        if self.connection_id is not None:
            out["channel"] = self.connection_id
        return out


def _id(args: Mapping[str, str], name: str) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise BadFilter(f"the {name} filter must be a number, not {raw[:40]!r}")
    return int(raw)


def pending(owner_id: int, flt: QueueFilter) -> list[Delivery]:
    """The deliveries the queue lists, oldest first (one query, plus one per eager list)."""
    return decisions.awaiting_review(
        owner_id, with_reviews=True, goal_id=flt.goal_id, connection_id=flt.connection_id
    )


def filter_choices(owner_id: int) -> tuple[list[Goal], list[Connection]]:
    """The owner's goals and connections for the filter pickers (two queries)."""
    goals = db.session.scalars(owned(Goal, owner_id).order_by(Goal.title, Goal.id)).all()
    links = db.session.scalars(owned(Connection, owner_id).order_by(Connection.label)).all()
    return list(goals), list(links)


@dataclass
class BatchResult:
    """What "accept selected" did: the reviews it made, and (title, reason) for each refusal."""

    accepted: list[Review] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def accept_at_price(owner_id: int, ids: Iterable[int], *, actor: str) -> BatchResult:
    """Accept each delivery in `ids` at its place's price, one by one.

    An id given twice is decided once (the decision itself refuses a second accept too, so
    a double post pays nothing twice); an id that is not the owner's is refused as unknown.
    """
    wanted = list(dict.fromkeys(ids))
    if len(wanted) > BATCH_LIMIT:
        raise ValueError(f"select at most {BATCH_LIMIT} deliveries at once")
    rows = db.session.scalars(
        owned(Delivery, owner_id)
        .where(Delivery.id.in_(wanted))
        .options(contains_eager(Delivery.job).joinedload(MicroJob.goal))
    ).all()
    titles = {row.id: row.job.title for row in rows}
    result = BatchResult()
    for delivery_id in wanted:
        if delivery_id not in titles:
            result.refused.append((f"delivery #{delivery_id}", "not found"))
            continue
        delivery = db.session.get(Delivery, delivery_id)
        try:
            review = decisions.accept(delivery, actor=actor)
        except REFUSALS as exc:
            db.session.rollback()
            result.refused.append((titles[delivery_id], _reason(exc)))
            continue
        result.accepted.append(review)
    return result


def _reason(exc: Exception) -> str:
    if isinstance(exc, BudgetExceeded):
        return f"over budget ({exc})"
    return str(exc)
