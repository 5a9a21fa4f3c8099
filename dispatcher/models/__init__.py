"""All models, importable from one place; one module per aggregate."""

from dispatcher.models.account import ApiToken, Owner, PasswordReset
from dispatcher.models.dispatch import Delivery, Dispatch, DispatchState, PushState, Review
from dispatcher.models.event import Event, InboundEvent
from dispatcher.models.goal import Goal, MetricValue
from dispatcher.models.job import DELIVERABLE_KINDS, MODES, MicroJob
from dispatcher.models.planning import CADENCE_UNITS, Cadence, CadenceRun, OwnerPlaybook

__all__ = [
    "CADENCE_UNITS",
    "DELIVERABLE_KINDS",
    "MODES",
    "ApiToken",
    "Cadence",
    "CadenceRun",
    "Delivery",
    "Dispatch",
    "DispatchState",
    "Event",
    "Goal",
    "InboundEvent",
    "MetricValue",
    "MicroJob",
    "Owner",
    "OwnerPlaybook",
    "PasswordReset",
    "PushState",
    "Review",
]
