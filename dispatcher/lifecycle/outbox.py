"""An outbox message: one notice to a teammate (brief, answer, revision, decision, reminder),
staged in the transaction that causes it and sent by a worker (dispatcher/teammates/outbox.py).

`claim` takes the row out of PENDING before any call is made, so two workers never send the
same row; `retry` puts it back only when the failed attempt surely reached nobody."""

from __future__ import annotations

from enum import StrEnum

from dispatcher.lifecycle.machine import Machine


class OutboxState(StrEnum):
    PENDING = "pending"  # staged; a worker must send it
    SENDING = "sending"  # claimed by one attempt (with a lease); the call may be out
    SENT = "sent"
    FAILED = "failed"  # refused for good, or an attempt of unknown outcome (never resent)


O = OutboxState  # noqa: E741

OUTBOX: Machine[OutboxState] = Machine(
    "outbox",
    OutboxState,
    {
        "claim": (frozenset({O.PENDING}), O.SENDING),
        "sent": (frozenset({O.SENDING}), O.SENT),
        "retry": (frozenset({O.SENDING}), O.PENDING),
        "fail": (frozenset({O.PENDING, O.SENDING}), O.FAILED),
    },
    attr="state",
)
