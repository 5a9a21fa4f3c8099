"""An assignment: one worker's place in an order. Money is held, spent and released per
assignment (DESIGN rule 5); the job's status is derived from its assignments."""

from __future__ import annotations

from enum import StrEnum

from dispatcher.lifecycle.machine import Machine


class AssignmentState(StrEnum):
    OPEN = "open"  # the order is out; nobody has taken this place yet
    TAKEN = "taken"
    SUBMITTED = "submitted"
    REVISION_REQUESTED = "revision_requested"
    ACCEPTED = "accepted"  # accepted here; the money is "paying" until the platform confirms
    PAID = "paid"
    REJECTED = "rejected"
    EXPIRED = "expired"
    RETURNED = "returned"  # the worker gave it back, or the platform withdrew it
    CANCELLED = "cancelled"


A = AssignmentState

ASSIGNMENT: Machine[AssignmentState] = Machine(
    "assignment",
    AssignmentState,
    {
        "take": (frozenset({A.OPEN}), A.TAKEN),
        "give_back": (frozenset({A.TAKEN}), A.OPEN),
        "submit": (frozenset({A.OPEN, A.TAKEN, A.REVISION_REQUESTED}), A.SUBMITTED),
        "request_revision": (frozenset({A.SUBMITTED}), A.REVISION_REQUESTED),
        "accept": (frozenset({A.SUBMITTED}), A.ACCEPTED),
        # the platform refused our acceptance: back to the owner's decision
        "reverse": (frozenset({A.ACCEPTED, A.REVISION_REQUESTED}), A.SUBMITTED),
        # the platform approved on its own (auto-approval, or it beat our reject): it pays,
        # so the books follow, whatever this place's state was here
        "adopt_approval": (
            frozenset(
                {
                    A.OPEN,
                    A.TAKEN,
                    A.SUBMITTED,
                    A.REVISION_REQUESTED,
                    A.REJECTED,
                    A.EXPIRED,
                    A.RETURNED,
                    A.CANCELLED,
                }  # fmt: skip
            ),
            A.ACCEPTED,
        ),
        # the owner accepts late work for a place that had ended unpaid (its money is held
        # again first)
        "accept_late": (frozenset({A.REJECTED, A.EXPIRED, A.RETURNED, A.CANCELLED}), A.ACCEPTED),
        "pay": (frozenset({A.ACCEPTED}), A.PAID),
        "reject": (frozenset({A.SUBMITTED}), A.REJECTED),
        "expire": (frozenset({A.OPEN, A.TAKEN}), A.EXPIRED),
        "return": (frozenset({A.OPEN, A.TAKEN}), A.RETURNED),
        "cancel": (frozenset({A.OPEN, A.TAKEN, A.SUBMITTED, A.REVISION_REQUESTED}), A.CANCELLED),
    },
)

#: money is held for these (reserved; for ACCEPTED, "paying")
HOLDING = frozenset({A.OPEN, A.TAKEN, A.SUBMITTED, A.REVISION_REQUESTED, A.ACCEPTED})
#: ended unpaid: their money went back
UNPAID_END = frozenset({A.REJECTED, A.EXPIRED, A.RETURNED, A.CANCELLED})
#: finished for good
FINISHED = UNPAID_END | {A.PAID}
