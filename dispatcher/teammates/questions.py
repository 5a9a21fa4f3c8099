"""A teammate's questions and the owner's answers. A question is an Event of kind
"teammate.question" on the job's timeline (written by the apply step); an answer is an Event
"teammate.answer" naming it, staged with its notice to the person in one transaction."""

from __future__ import annotations

from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.journal import note
from dispatcher.models import Assignment, Dispatch, Event, MicroJob
from dispatcher.teammates import notices, outbox

QUESTION = "teammate.question"
ANSWER = "teammate.answer"


def _answered_ids(owner_id: int, job_id: int | None = None) -> set[int]:
    query = select(Event.data).where(Event.owner_id == owner_id, Event.kind == ANSWER)
    if job_id is not None:
        query = query.where(Event.job_id == job_id)
    return {int(d.get("question_event_id") or 0) for d in db.session.scalars(query)}


def for_job(job: MicroJob) -> list[tuple[Event, bool]]:
    """The job's questions, oldest first, each with whether it was answered."""
    asked = db.session.scalars(
        select(Event)
        .where(Event.job_id == job.id, Event.owner_id == job.owner_id, Event.kind == QUESTION)
        .order_by(Event.id)
    ).all()
    answered = _answered_ids(job.owner_id, job.id)
    return [(e, e.id in answered) for e in asked]


def thread(place: Assignment) -> list[tuple[str, str | None]]:
    """What the person asked on this order and the owner's answers, for their page."""
    events = db.session.scalars(
        select(Event)
        .where(Event.job_id == place.job_id, Event.kind.in_((QUESTION, ANSWER)))
        .order_by(Event.id)
    ).all()
    asked = [e for e in events if e.kind == QUESTION
             and (e.data or {}).get("dispatch_id") == place.dispatch_id]  # fmt: skip
    answers = {int((e.data or {}).get("question_event_id") or 0): str((e.data or {}).get("text"))
               for e in events if e.kind == ANSWER}  # fmt: skip
    return [(str((q.data or {}).get("text", "")), answers.get(q.id)) for q in asked]


def open_for_owner(owner_id: int) -> list[Event]:
    """Every question still waiting for the owner's answer (Today's "questions" list)."""
    asked = db.session.scalars(
        select(Event)
        .where(Event.owner_id == owner_id, Event.kind == QUESTION, Event.job_id.is_not(None))
        .order_by(Event.id)
    ).all()
    answered = _answered_ids(owner_id)
    return [e for e in asked if e.id not in answered]


def answer(job: MicroJob, question: Event, text: str, *, actor: str) -> Event:
    """Record the owner's answer and stage it for the person; the caller commits."""
    text = (text or "").strip()
    if not text:
        raise ValueError("write an answer first")
    if question.job_id != job.id or question.kind != QUESTION:
        raise ValueError("no such question on this job")
    if question.id in _answered_ids(job.owner_id, job.id):
        raise ValueError("this question was already answered")
    place = _place_of(question, job)
    if place is None:
        raise ValueError("the person who asked is no longer on this job")
    event = note(job, ANSWER, actor=actor, question_event_id=question.id, text=text)
    subject, body = notices.answer(job, str((question.data or {}).get("text", "")), text)
    outbox.stage(place, "answer", subject, body, key=f"answer-{question.id}")
    return event


def _place_of(question: Event, job: MicroJob) -> Assignment | None:
    data = question.data or {}
    dispatch = db.session.get(Dispatch, data.get("dispatch_id") or 0)
    if dispatch is None or dispatch.job_id != job.id or not dispatch.assignments:
        return None
    return dispatch.assignments[0]
