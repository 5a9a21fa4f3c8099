"""All models, importable from one place; one module per aggregate."""

from dispatcher.models.account import ApiToken, Owner, PasswordReset
from dispatcher.models.connection import Connection
from dispatcher.models.dispatch import (
    Assignment,
    Delivery,
    Dispatch,
    DispatchState,
    PushState,
    Review,
)
from dispatcher.models.event import Event, InboundEvent
from dispatcher.models.goal import Goal, MetricValue
from dispatcher.models.job import DELIVERABLE_KINDS, MODES, JobVersion, MicroJob
from dispatcher.models.notification import Notification, NotificationSettings
from dispatcher.models.person import Person
from dispatcher.models.planning import CADENCE_UNITS, Cadence, CadenceRun, OwnerPlaybook
from dispatcher.models.polling import PollState
from dispatcher.models.teammate import OutboxMessage, SubmissionLink

__all__ = [
    "CADENCE_UNITS",
    "DELIVERABLE_KINDS",
    "MODES",
    "ApiToken",
    "Assignment",
    "Cadence",
    "CadenceRun",
    "Connection",
    "Delivery",
    "Dispatch",
    "DispatchState",
    "Event",
    "Goal",
    "InboundEvent",
    "JobVersion",
    "MetricValue",
    "MicroJob",
    "Notification",
    "NotificationSettings",
    "OutboxMessage",
    "Owner",
    "OwnerPlaybook",
    "PasswordReset",
    "Person",
    "PollState",
    "PushState",
    "Review",
    "SubmissionLink",
]
