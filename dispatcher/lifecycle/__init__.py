"""Every state machine, one module per entity: job (`job.py`), dispatch, assignment,
delivery, inbound event, review push and teammate outbox. Each is a `Machine` (machine.py):
a StrEnum of states and a transition table. Nothing outside this package assigns a state in place.

The job machine's names are re-exported here, since most callers move jobs."""

from dispatcher.lifecycle.assignment import ASSIGNMENT, AssignmentState
from dispatcher.lifecycle.delivery import DELIVERY, DeliveryState
from dispatcher.lifecycle.dispatch import DISPATCH, DispatchState
from dispatcher.lifecycle.inbound import INBOUND, InboundState
from dispatcher.lifecycle.job import (
    AWAITING_REVIEW,
    COMPLETE,
    FINISHED,
    JOB,
    OUT,
    RESERVED,
    TERMS_FIXED,
    TRANSITIONS,
    Move,
    Status,
    Summary,
    allowed_actions,
    can,
    derived_status,
    plan,
    record_moves,
    summarize,
    summarize_counts,
    target,
    transition,
    written,
)
from dispatcher.lifecycle.machine import (
    Machine,
    event_row,
    event_values,
    insert_event,
    inserted_event,
    record,
    record_many,
)
from dispatcher.lifecycle.outbox import OUTBOX, OutboxState
from dispatcher.lifecycle.push import PUSH, PushState

__all__ = [
    "ASSIGNMENT",
    "AWAITING_REVIEW",
    "COMPLETE",
    "DELIVERY",
    "DISPATCH",
    "FINISHED",
    "INBOUND",
    "JOB",
    "OUT",
    "OUTBOX",
    "PUSH",
    "RESERVED",
    "TERMS_FIXED",
    "TRANSITIONS",
    "AssignmentState",
    "DeliveryState",
    "DispatchState",
    "InboundState",
    "Machine",
    "Move",
    "OutboxState",
    "PushState",
    "Status",
    "Summary",
    "allowed_actions",
    "can",
    "derived_status",
    "event_row",
    "event_values",
    "insert_event",
    "inserted_event",
    "plan",
    "record",
    "record_many",
    "record_moves",
    "summarize",
    "summarize_counts",
    "target",
    "transition",
    "written",
]
