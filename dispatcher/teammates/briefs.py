"""Which notices the dispatch and review steps stage for a teammate, in their transactions.

The brief of a channel that sends it by notice (email) is staged in the transaction that
records the order as placed (send.py): the order then exists for the page the mail links to,
and an order cancelled or failed before placement sends no mail. Decisions are staged with
the decision itself (review.py), so a decision is never recorded without its notice."""

from __future__ import annotations

from dispatcher.dispatch.channels import registry
from dispatcher.models import Assignment, Dispatch, MicroJob, Review
from dispatcher.teammates import notices, outbox


def _teammate_class(dispatch: Dispatch | None):
    if dispatch is None:
        return None
    cls = registry().classes().get(dispatch.adapter)
    return cls if cls is not None and cls.teammate else None


def stage_brief(dispatch: Dispatch, job: MicroJob) -> None:
    cls = _teammate_class(dispatch)
    if cls is None or not cls.brief_by_notice:
        return
    for place in dispatch.assignments:
        subject, text = notices.brief(job, dispatch, place)
        outbox.stage(place, "brief", subject, text, key=f"brief-{dispatch.idempotency_key}-"
                     f"{place.position}", with_link=True)  # fmt: skip


def stage_decision(review: Review, place: Assignment, job: MicroJob) -> None:
    if _teammate_class(place.dispatch) is None:
        return
    if review.decision == "accept":
        subject, text = notices.accepted(job, review.payout_cents, place.dispatch.currency)
        kind, with_link = "accepted", False
    elif review.decision == "revise":
        subject, text = notices.revision(job, review.feedback)
        kind, with_link = "revision", True
    else:
        subject, text = notices.rejected(job, review.feedback)
        kind, with_link = "rejected", False
    outbox.stage(place, kind, subject, text, key=f"review-{review.id}", with_link=with_link)
