"""The books follow the platform (DESIGN rule 5): a decision the platform made or holds
stands, whatever was decided here.

Used when a push of the owner's decision finds another one at the platform, when a push is
refused for good, and when the platform reports a decision of its own (auto-approval after
its review window, an approval that beat our reject, its own rejection). Runs in the
caller's transaction, under the job's lock.
"""

from __future__ import annotations

from typing import Any

from dispatcher.dispatch import places
from dispatcher.lifecycle import DELIVERY, AssignmentState, DeliveryState
from dispatcher.models import Delivery, MicroJob

A = AssignmentState
V = DeliveryState


def follow_platform(
    delivery: Delivery,
    decision: str,
    job: MicroJob,
    *,
    actor: str,
    payout_cents: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Make the delivery and its place say what the platform holds: "accept" (paid),
    "reject" or "revise"."""
    if decision == "accept":
        approve(delivery, job, actor=actor, payout_cents=payout_cents, data=data)
        return
    place = delivery.assignment
    if place.status == A.ACCEPTED:
        places.move(place, "reverse", job, actor=actor, data=data)
    if delivery.status == V.ACCEPTED:
        DELIVERY.move(delivery, "reverse", job=job, actor=actor, data=data)
    if decision == "reject":
        if place.status in (A.SUBMITTED, A.REVISION_REQUESTED):
            if place.status == A.REVISION_REQUESTED:
                places.move(place, "reverse", job, actor=actor, data=data)
            places.move(place, "reject", job, actor=actor, data=data)
        if DELIVERY.can(delivery.status, "adopt_rejection"):
            DELIVERY.move(delivery, "adopt_rejection", job=job, actor=actor, data=data)
    elif decision == "revise":
        if place.status == A.SUBMITTED:
            places.move(place, "request_revision", job, actor=actor, data=data)
        if delivery.status == V.SUBMITTED:
            DELIVERY.move(delivery, "request_revision", job=job, actor=actor, data=data)
    _settle(delivery, job, actor=actor, data=data)


def approve(
    delivery: Delivery,
    job: MicroJob,
    *,
    actor: str,
    payout_cents: int | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """The platform approved this work and pays it: the place is paid in the books (its
    held money spent; if it had given its money back, the spend is recorded all the same,
    since the platform paid). Returns False when it was already paid."""
    place = delivery.assignment
    if place.status == A.PAID:
        return False
    if payout_cents is None and place.status == A.ACCEPTED:
        payout_cents = _accepted_payout(delivery)
    if place.status != A.ACCEPTED:
        places.move(place, "adopt_approval", job, actor=actor, data=data)
    if delivery.status != V.ACCEPTED:
        DELIVERY.move(delivery, "adopt_approval", job=job, actor=actor, data=data)
    places.move(place, "pay", job, actor=actor, payout_cents=payout_cents, data=data)
    _settle(delivery, job, actor=actor, data=data)
    return True


def _accepted_payout(delivery: Delivery) -> int | None:
    """What the owner accepted this work at (the latest acceptance), if they did."""
    for review in reversed(delivery.reviews):
        if review.decision == "accept":
            return review.payout_cents
    return None


def reverse(
    delivery: Delivery, job: MicroJob, *, actor: str, data: dict[str, Any] | None = None
) -> None:
    """The platform refused an acceptance or a revision request and holds nothing else: the
    work is back in the owner's review queue, its money still held."""
    place = delivery.assignment
    if place.status in (A.ACCEPTED, A.REVISION_REQUESTED):
        places.move(place, "reverse", job, actor=actor, data=data)
    if delivery.status in (V.ACCEPTED, V.REVISION_REQUESTED):
        DELIVERY.move(delivery, "reverse", job=job, actor=actor, data=data)
    _settle(delivery, job, actor=actor, data=data)


def _settle(delivery: Delivery, job: MicroJob, *, actor: str, data: dict[str, Any] | None) -> None:
    places.sync_job(job, actor=actor, data=data)
    places.close_if_finished(delivery.assignment.dispatch, job, actor=actor)
