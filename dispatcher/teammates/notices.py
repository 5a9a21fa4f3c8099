"""What each notice to a teammate says: the brief, the owner's answer, a revision request,
the decision, a reminder. Staged in the outbox by the transaction that causes it."""

from __future__ import annotations

from dispatcher import versions
from dispatcher.models import Assignment, Dispatch, MicroJob
from dispatcher.money import format_cents


def _facts(job: MicroJob, place: Assignment, currency: str) -> list[str]:
    lines = []
    if job.due_date is not None:
        lines.append(f"Due: {job.due_date.isoformat()}")
    lines.append(f"Pay: {format_cents(place.price_cents, currency)}" if place.price_cents
                 else "Pay: none agreed for this job")  # fmt: skip
    return lines


def brief(job: MicroJob, dispatch: Dispatch, place: Assignment) -> tuple[str, str]:
    """(subject, text) of the mail that hands the job over."""
    text = versions.text_at(job, dispatch.job_version)
    lines = [f"You have a new job: {text.title}", ""]
    if text.brief:
        lines += [text.brief.strip(), ""]
    if text.acceptance_criteria:
        lines.append("It is done when:")
        lines += [f"- {c}" for c in text.acceptance_criteria]
        lines.append("")
    lines += _facts(job, place, dispatch.currency)
    return f"New job: {text.title}", "\n".join(lines)


def revision(job: MicroJob, feedback: str) -> tuple[str, str]:
    return (
        f"Please revise: {job.title}",
        f"Thank you for your work on “{job.title}”. Please change this and hand it in again:\n\n"
        f"{feedback.strip()}",
    )


def accepted(job: MicroJob, payout_cents: int, currency: str) -> tuple[str, str]:
    pay = f" Your pay: {format_cents(payout_cents, currency)}." if payout_cents else ""
    return f"Accepted: {job.title}", f"Your work on “{job.title}” was accepted. Thank you!{pay}"


def rejected(job: MicroJob, reason: str) -> tuple[str, str]:
    return (
        f"Not accepted: {job.title}",
        f"Your work on “{job.title}” was not accepted:\n\n{reason.strip()}",
    )


def answer(job: MicroJob, question: str, text: str) -> tuple[str, str]:
    return (
        f"Answer: {job.title}",
        f"You asked about “{job.title}”:\n\n> {question.strip()}\n\nThe answer:\n\n{text.strip()}",
    )


def reminder(job: MicroJob) -> tuple[str, str]:
    due = job.due_date.isoformat() if job.due_date else "soon"
    return f"Reminder: {job.title} is due {due}", f"A reminder: “{job.title}” is due {due}."
