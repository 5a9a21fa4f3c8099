"""Which timeline Events the owner is told about, and how each reads in a message.

Kept as data (kind -> topic) so adding a kind is one line; the Event kinds are the ones the
lifecycle and the journal already write (dispatcher/lifecycle/machine.py `record`,
dispatcher/journal.py `note`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Topic(StrEnum):
    DELIVERY = "delivery"  # new work to review
    QUESTION = "question"  # a teammate asks something
    FAILURE = "failure"  # something needs the owner: a failed dispatch, a stuck event, a refusal


#: Event kind -> what it is about, for the owner
KINDS: dict[str, Topic] = {
    "assignment.submit": Topic.DELIVERY,
    "late_delivery": Topic.DELIVERY,
    "teammate.question": Topic.QUESTION,
    "dispatch.fail": Topic.FAILURE,
    "inbound_quarantined": Topic.FAILURE,
    "review_push_failed": Topic.FAILURE,
}

#: how each topic is headed in a message, in this order
HEADINGS = {
    Topic.DELIVERY: "New deliveries to review",
    Topic.QUESTION: "Questions from your teammates",
    Topic.FAILURE: "Needs your attention",
}


@dataclass(frozen=True)
class Notice:
    """One Event as the owner reads it."""

    event_id: int
    topic: Topic
    job_id: int | None
    job_title: str
    line: str
    url: str


def _text(data: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if value:
            return " ".join(str(value).split())[:300]
    return ""


def describe(kind: str, actor: str, data: dict[str, Any], job_title: str) -> str:
    """The one line a message shows for an Event of `kind`."""
    title = job_title or "a deleted job"
    if kind == "assignment.submit":
        return f"{title}: delivered, waiting for your review"
    if kind == "late_delivery":
        return f"{title}: a late delivery arrived (kept; you may still accept it)"
    if kind == "teammate.question":
        who = _text(data, "person_name", "name") or actor.partition(":")[2] or actor
        question = _text(data, "text", "question", "body")
        return f"{title}: {who} asks: {question}" if question else f"{title}: {who} has a question"
    if kind == "dispatch.fail":
        return f"{title}: could not be sent ({_text(data, 'reason') or 'no reason given'})"
    if kind == "inbound_quarantined":
        return f"{title}: an update from the platform could not be applied ({_text(data, 'error')})"
    if kind == "review_push_failed":
        decision = _text(data, "decision") or "decision"
        return f"{title}: the platform refused your {decision} ({_text(data, 'reason')})"
    return f"{title}: {kind}"
