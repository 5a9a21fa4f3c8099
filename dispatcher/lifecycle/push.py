"""A review push: whether the platform has heard the owner's decision.

The Review row is the staged push (DESIGN rule 1): the reconciler re-enqueues every OWED one
until the platform confirms it."""

from __future__ import annotations

from enum import StrEnum

from dispatcher.lifecycle.machine import Machine


class PushState(StrEnum):
    OWED = "owed"  # decided here; the platform has not confirmed it yet
    PUSHED = "pushed"  # the platform confirmed it, or already held it (adopted)
    REFUSED = "refused"  # the platform refused it for good; the job's timeline says why
    NONE = "none"  # nothing to push: a teammate's work, decided here only


P = PushState

PUSH: Machine[PushState] = Machine(
    "push",
    PushState,
    {
        "confirm": (frozenset({P.OWED}), P.PUSHED),
        "refuse": (frozenset({P.OWED}), P.REFUSED),
    },
    attr="push_state",
)
