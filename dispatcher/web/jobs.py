"""One job: its page (timeline, dispatches, deliveries, review) and every action on it.

Actions post here and come back (303) to the page they were made on (`next`), anchored at the
job. State changes go through the services: the tree for planning and kept jobs, the dispatch
service for delegated ones.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from dispatcher import versions
from dispatcher.dispatch import service as dispatch_service
from dispatcher.errors import InvalidChange, InvalidTransition
from dispatcher.extensions import db
from dispatcher.forms import JobForm, ModeForm, SplitForm, TitleForm, amount_text
from dispatcher.lifecycle import Status
from dispatcher.models import Event, MicroJob
from dispatcher.people import delegate, directory
from dispatcher.planning import outline, tree
from dispatcher.scoping import get_owned
from dispatcher.today import waiting_for
from dispatcher.web.common import (
    REFUSALS,
    actor,
    back,
    channel_choices,
    counted,
    owner_id,
    refuse,
    safe_next,
)
from dispatcher.web.goals import goal_url, render_goal
from dispatcher.web.jobview import KEPT_ACTIONS, job_buttons
from dispatcher.web.people import job_people
from dispatcher.web.review_forms import review_forms

bp = Blueprint("jobs", __name__)

#: Price and assignments are fixed once money may be reserved for the job.
MONEY_EDITABLE = frozenset({Status.DRAFT, Status.READY})
#: Who does a job can change only before anything has happened to it.
MODE_EDITABLE = MONEY_EDITABLE
#: Event.data keys worth showing in the timeline, with their labels.
EVENT_DETAILS = {
    "reason": "reason",
    "feedback": "feedback",
    "error": "error",
    "platform": "platform",
    "channel": "channel",
    "title": "title",
    "rating": "rating",
}


def _job(job_id: int) -> MicroJob:
    return get_owned(MicroJob, job_id, owner_id())


@bp.get("/jobs/<int:job_id>")
@login_required
def show(job_id: int):
    return render_job(_job(job_id))


def render_job(
    job: MicroJob, status: int = 200, given: dict[int, dict[str, FlaskForm]] | None = None
):
    """The job page; `given` puts failed review forms back on their delivery."""
    events = db.session.scalars(
        select(Event)
        .where(Event.job_id == job.id, Event.owner_id == owner_id())
        .order_by(Event.created_at, Event.id)
    ).all()
    given = given or {}
    forms = {d.id: review_forms(d, given.get(d.id)) for d in job.deliveries}
    sent = {d.id: d.job_version for d in job.dispatches if d.job_version is not None}
    return render_template(
        "jobs/show.html",
        job=job,
        goal=job.goal,
        events=events,
        details=lambda event: event_details(event, sent),
        versions=versions.history(job) if job.version > 1 else [],
        buttons=job_buttons(job),
        review_forms=forms,
        open_forms={(k, name) for k, v in given.items() for name in v},
        deletable=tree.DELETABLE,
        waiting=waiting_for([job], current_user) if not job.children else {},
        **job_people(job),
    ), status


def event_details(event: Event, sent: dict[int, int] | None = None) -> list[tuple[str, str]]:
    """The parts of an event's data an owner cares about (reasons, feedback, errors), and
    which version of the job's text an order went out with (`sent`: dispatch id -> version)."""
    data: dict[str, Any] = event.data or {}
    out = [(label, str(data[key])) for key, label in EVENT_DETAILS.items() if data.get(key)]
    if data.get("version"):
        out.append(("new version", f"v{data['version']}"))
    if sent and event.kind in ("queue", "requeue") and data.get("dispatch_id") in sent:
        out.append(("order sent", f"v{sent[data['dispatch_id']]}"))
    if data.get("payout_cents") is not None:
        out.append(("paid", amount_text(data["payout_cents"])))
    if data.get("fields"):
        out.append(("changed", ", ".join(map(str, data["fields"]))))
    return out


# --- planning ---------------------------------------------------------------------------------


@bp.post("/jobs/<int:job_id>/children")
@login_required
def add_child(job_id: int):
    job = _job(job_id)
    form = TitleForm()
    if not form.validate_on_submit():
        return render_goal(job.goal, 400, {job.id: {"add": form}})
    try:
        child = tree.add_job(job.goal, parent=job, title=form.title.data, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
        return back(goal_url(job.goal, job.id))
    flash(f"Added “{child.title}” under “{job.title}”.", "success")
    return back(goal_url(job.goal, child.id))


@bp.post("/jobs/<int:job_id>/split")
@login_required
def split(job_id: int):
    job = _job(job_id)
    form = SplitForm()
    if form.validate_on_submit():
        try:
            added = outline.split_outline(job, form.titles.data, actor=actor())
        except InvalidTransition as exc:
            refuse(exc)
            return back(goal_url(job.goal, job.id))
        except ValueError as exc:
            db.session.rollback()
            form.titles.errors.append(str(exc))
        else:
            flash(f"Split “{job.title}” into {counted(added.count, 'job')}.", "success")
            return back(goal_url(job.goal, job.id))
    return render_goal(job.goal, 400, {job.id: {"split": form}})


@bp.route("/jobs/<int:job_id>/edit", methods=["GET", "POST"])
@login_required
def edit(job_id: int):
    job = _job(job_id)
    money = job.status in MONEY_EDITABLE and not job.children
    if request.method == "GET":
        form = JobForm(
            obj=job,
            data={"price": amount_text(job.price_cents) if job.price_cents else ""},
        )
        form.acceptance_criteria.data = "\n".join(job.acceptance_criteria or [])
    else:
        form = JobForm()
        if "price" not in request.form and "assignments" not in request.form:
            # The page showed no price (the job was under way): leave both as they are.
            del form.price
            del form.assignments
            del form.free
    if form.validate_on_submit():
        # A price and assignments sent while the job is out at its channel are refused by
        # the service (the owner must cancel first), never silently dropped.
        sent_money = "price" in form and not job.children
        try:
            tree.update_job(job, actor=actor(), **form.fields_for_service(money=sent_money))
        except REFUSALS as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            flash("Job saved.", "success")
            return back(goal_url(job.goal, job.id))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "jobs/edit.html",
        job=job,
        goal=job.goal,
        form=form,
        money_editable=money and "price" in form,
        next=safe_next(request.values.get("next")),
    ), status


@bp.post("/jobs/<int:job_id>/delete")
@login_required
def delete(job_id: int):
    """Delete the job and its subtree; the service refuses (409, said on the job's page)
    while any of it holds money or owes a platform a call."""
    job = _job(job_id)
    goal = job.goal
    try:
        deleted = tree.delete_job(job, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
        return render_job(_job(job_id), 409)
    below = f" and the {len(deleted) - 1} jobs below it" if len(deleted) > 1 else ""
    flash(f"Deleted “{job.title}”{below}.", "success")
    return redirect(goal_url(goal), code=303)


@bp.post("/jobs/<int:job_id>/mode")
@login_required
def mode(job_id: int):
    job = _job(job_id)
    if job.children or job.status not in MODE_EDITABLE:
        refuse(ValueError(f"“{job.title}” is {job.status}: who does it can no longer change"))
        return back(goal_url(job.goal, job.id))
    form = ModeForm(channels=channel_choices(), people=directory.choices(owner_id()))
    if form.validate_on_submit():
        try:
            delegate.set_mode(
                job,
                form.mode.data,
                connection_id=form.connection_id,
                person_id=form.person_id,
                actor=actor(),
            )
        except InvalidChange as exc:
            db.session.rollback()
            target = form.person if exc.field == "person_id" else form.mode
            target.errors.append(str(exc))
        except ValueError as exc:
            db.session.rollback()
            form.mode.errors.append(str(exc))
        else:
            flash(_mode_saved(job), "success")
            return back(goal_url(job.goal, job.id))
    return render_goal(job.goal, 400, {job.id: {"mode": form}})


def _mode_saved(job: MicroJob) -> str:
    if job.mode == "delegate":
        return f"Saved: “{job.title}” goes to {job.channel} when you dispatch it."
    if job.mode == "keep":
        return f"Saved: you do “{job.title}” yourself."
    return f"Saved: who does “{job.title}” is undecided."


# --- kept jobs --------------------------------------------------------------------------------


@bp.post("/jobs/<int:job_id>/act/<action>")
@login_required
def act(job_id: int, action: str):
    job = _job(job_id)
    if action not in KEPT_ACTIONS:
        abort(404)
    if job.children:
        refuse(ValueError("tick off its jobs instead: a parent is done when they all are"))
        return back(goal_url(job.goal, job.id))
    if job.mode == "delegate":
        refuse(ValueError(f"“{job.title}” is delegated: mark it “I do it” first"))
        return back(goal_url(job.goal, job.id))
    try:
        tree.act(job, action, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
    else:
        if action == "complete":
            flash(f"Done: {job.title}", "success")
    return back(goal_url(job.goal, job.id))


# --- delegated jobs ---------------------------------------------------------------------------


@bp.post("/jobs/<int:job_id>/dispatch")
@login_required
def dispatch(job_id: int):
    job = _job(job_id)
    try:
        dispatch_service.dispatch_job(job, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
    else:
        flash(f"Queued for {job.channel}: {job.title}", "success")
    return back(goal_url(job.goal, job.id))


@bp.post("/jobs/<int:job_id>/retry")
@login_required
def retry(job_id: int):
    job = _job(job_id)
    try:
        dispatch_service.retry_job(job, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
    else:
        flash(f"Sent again to {job.channel}: {job.title}", "success")
    return back(goal_url(job.goal, job.id))


@bp.post("/jobs/<int:job_id>/cancel")
@login_required
def cancel(job_id: int):
    job = _job(job_id)
    try:
        note = dispatch_service.cancel_job(job, actor=actor())
    except REFUSALS as exc:
        refuse(exc)
    else:
        flash(f"Cancelled: {job.title}" + (f" ({note})" if note else ""), "success")
    return back(goal_url(job.goal, job.id))
