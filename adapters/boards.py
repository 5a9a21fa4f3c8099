"""What the board channels (Trello, Asana) write on a card or task, and read back from it.

Boards keep no idempotency key, so every card or task and every comment Dispatcher writes
ends with a reference line (``REF_LABEL <key>``): the adapter searches for it before creating
again (a retry after a half-finished attempt finds the first one), and knows its own
comments when the board echoes them back in a webhook.
"""

from __future__ import annotations

import re

from adapters.base import JobSpec, Notice

REF_LABEL = "Dispatcher ref:"
_LINK = re.compile(r"https?://[^\s<>()\[\]\"']+")


def ref_line(key: str) -> str:
    return f"{REF_LABEL} {key}"


def has_ref(text: str, key: str) -> bool:
    """Whether `text` carries exactly this key's reference line."""
    return any(line.strip() == ref_line(key) for line in (text or "").splitlines())


def written_by_us(text: str) -> bool:
    return any(line.strip().startswith(REF_LABEL) for line in (text or "").splitlines())


def first_link(text: str) -> str | None:
    """The first http(s) link in a person's comment: their work, when they post one."""
    match = _LINK.search(text or "")
    return match.group(0).rstrip(".,;:!?") if match else None


def pay_text(job: JobSpec) -> str:
    return f"{job.price_cents // 100}.{job.price_cents % 100:02d} {job.currency}"


def describe(job: JobSpec, key: str) -> str:
    """The card's or task's text: the brief, what will be checked, when, what it pays, and
    where to hand the work in."""
    parts = [job.brief.strip()]
    if job.acceptance_criteria:
        criteria = "\n".join(f"- {c}" for c in job.acceptance_criteria)
        parts.append("Acceptance criteria:\n" + criteria)
    facts = []
    if job.due_date is not None:
        facts.append(f"Due: {job.due_date.isoformat()}")
    facts.append(f"Pay: {pay_text(job)}")
    if job.submission_url:
        facts.append(f"Hand your work in here: {job.submission_url}")
    parts.append("\n".join(facts))
    parts.append(ref_line(key))
    return "\n\n".join(p for p in parts if p)


def comment_text(notice: Notice) -> str:
    """A notice as one comment on the card or task, marked as ours."""
    parts = [notice.subject.strip(), notice.text.strip()]
    if notice.submission_url:
        parts.append(f"Hand your work in here: {notice.submission_url}")
    parts.append(ref_line(notice.key))
    return "\n\n".join(p for p in parts if p)
