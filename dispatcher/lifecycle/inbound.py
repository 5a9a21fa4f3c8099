"""An inbound event: a webhook or a polled change, stored before it is applied (rule 4).

Rows are created `received`, `ignored` (authentic, of a type we do not use) or `invalid`
(malformed). The row itself is the record of its moves (status, error, applied_at): it belongs
to no job until it is applied, so it writes no timeline Event."""

from __future__ import annotations

from enum import StrEnum

from dispatcher.lifecycle.machine import Machine


class InboundState(StrEnum):
    RECEIVED = "received"
    APPLIED = "applied"
    IGNORED = "ignored"
    INVALID = "invalid"
    QUARANTINED = "quarantined"


I = InboundState  # noqa: E741

INBOUND: Machine[InboundState] = Machine(
    "inbound",
    InboundState,
    {
        "apply": (frozenset({I.RECEIVED}), I.APPLIED),
        "quarantine": (frozenset({I.RECEIVED}), I.QUARANTINED),
        # about no order of ours: a board reports every card on it, not only ours
        "disregard": (frozenset({I.RECEIVED}), I.IGNORED),
        "retry": (frozenset({I.QUARANTINED}), I.RECEIVED),
    },
)

#: the states a new row may be stored in
INITIAL = frozenset({I.RECEIVED, I.IGNORED, I.INVALID})
