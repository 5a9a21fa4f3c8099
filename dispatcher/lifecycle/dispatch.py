"""A dispatch: one order at one channel, holding the job's assignments (DESIGN rule 3)."""

from __future__ import annotations

from enum import StrEnum

from dispatcher.lifecycle.machine import Machine


class DispatchState(StrEnum):
    PENDING = "pending"  # staged in the DB; a worker must place it
    PLACED = "placed"  # the platform holds an order for it
    FAILED = "failed"  # gave up; the reason is in last_error
    CANCELLED = "cancelled"
    CLOSED = "closed"  # every assignment is finished; nothing more expected


D = DispatchState

DISPATCH: Machine[DispatchState] = Machine(
    "dispatch",
    DispatchState,
    {
        "place": (frozenset({D.PENDING}), D.PLACED),
        "fail": (frozenset({D.PENDING}), D.FAILED),
        "cancel": (frozenset({D.PENDING, D.PLACED}), D.CANCELLED),
        "close": (frozenset({D.PLACED}), D.CLOSED),
    },
    attr="state",
)

#: still in play: the order is being placed or is open at the platform
OPEN = frozenset({D.PENDING, D.PLACED})
