"""A delivery: one submission of work by one assignment, and the owner's decision on it."""

from __future__ import annotations

from enum import StrEnum

from dispatcher.lifecycle.machine import Machine


class DeliveryState(StrEnum):
    SUBMITTED = "submitted"  # waiting for the owner
    ACCEPTED = "accepted"
    REVISION_REQUESTED = "revision_requested"
    REJECTED = "rejected"
    LATE = "late"  # came for a closed order or a finished assignment: kept, charged to nobody
    CLOSED = "closed"  # the job was cancelled while it waited: out of the review queue


V = DeliveryState

DELIVERY: Machine[DeliveryState] = Machine(
    "delivery",
    DeliveryState,
    {
        "accept": (frozenset({V.SUBMITTED, V.LATE}), V.ACCEPTED),
        "request_revision": (frozenset({V.SUBMITTED}), V.REVISION_REQUESTED),
        "reject": (frozenset({V.SUBMITTED}), V.REJECTED),
        "close": (frozenset({V.SUBMITTED}), V.CLOSED),
        # the platform refused our acceptance, or approved what we rejected: its word stands
        "reverse": (frozenset({V.ACCEPTED, V.REVISION_REQUESTED}), V.SUBMITTED),
        "adopt_approval": (
            frozenset({V.SUBMITTED, V.REJECTED, V.REVISION_REQUESTED, V.LATE, V.CLOSED}),
            V.ACCEPTED,
        ),
        # the platform rejected it, or asked for a revision, on its own
        "adopt_rejection": (frozenset({V.SUBMITTED, V.ACCEPTED, V.LATE}), V.REJECTED),
    },
)

#: waiting for the owner's decision (the review queue)
AWAITING = frozenset({V.SUBMITTED})
