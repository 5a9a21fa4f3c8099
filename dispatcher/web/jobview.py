"""Which action buttons a job shows, from the lifecycle table (never a second copy of it)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from dispatcher import lifecycle
from dispatcher.dispatch.service import DISPATCHABLE, REDISPATCHABLE
from dispatcher.lifecycle import Status
from dispatcher.models import MicroJob

#: Lifecycle actions the owner applies by hand to a job they keep.
KEPT_ACTIONS = {"start": "Start", "complete": "✓ Done", "reopen": "Reopen"}


@dataclass(frozen=True)
class Button:
    label: str
    url: str
    kind: str = ""  # "primary" | "danger" | ""
    confirm: str = ""


def job_buttons(job: MicroJob, *, compact: bool = False, leaf: bool | None = None) -> list[Button]:
    """The buttons a leaf job offers in its state; none for a parent (its leaves act).

    `compact` (the tree) leaves out Cancel on jobs nobody has started, to keep rows short.
    `leaf` says whether the job has children when the caller already knows (the tree page
    does, for thousands of jobs); otherwise `job.children` is loaded to find out.
    """
    if leaf is None:
        leaf = not job.children
    if not leaf:
        return []
    status = Status(job.status)
    out: list[Button] = []
    if job.mode == "keep":
        for action, label in KEPT_ACTIONS.items():
            if lifecycle.can(status, action):
                kind = "primary" if action == "complete" else ""
                out.append(Button(label, url_for("jobs.act", job_id=job.id, action=action), kind))
    if job.mode == "delegate" and job.channel:
        if status in DISPATCHABLE:
            out.append(
                Button(
                    f"Dispatch to {job.channel}", url_for("jobs.dispatch", job_id=job.id), "primary"
                )
            )
        elif status in REDISPATCHABLE:
            out.append(Button("Send again", url_for("jobs.retry", job_id=job.id), "primary"))
    if lifecycle.can(status, "cancel") and not (compact and status in (Status.DRAFT, Status.READY)):
        out.append(
            Button(
                "Cancel",
                url_for("jobs.cancel", job_id=job.id),
                "danger",
                confirm=f"Cancel “{job.title}”?",
            )
        )
    return out
