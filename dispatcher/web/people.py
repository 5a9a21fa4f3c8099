"""People: the owner's directory of teammates (list, add, edit, archive), each person's page
with their scorecard, and recording pay for a person's accepted work from the job page."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from dispatcher.errors import InvalidChange, NotFound
from dispatcher.extensions import db
from dispatcher.forms import PaymentForm, PersonForm, amount_text
from dispatcher.models import Assignment, MicroJob, Person
from dispatcher.money import format_cents
from dispatcher.people import directory, pay
from dispatcher.people.scorecard import scorecard, scorecards
from dispatcher.scoping import get_owned
from dispatcher.web.common import REFUSALS, actor, owner_id, refuse

bp = Blueprint("people", __name__)


@bp.before_request
@login_required
def _owners_only() -> None:
    """Every page here is one owner's."""


def _person(person_id: int) -> Person:
    try:
        return directory.get(person_id, owner_id())
    except NotFound:
        abort(404)


@bp.get("/people")
def index():
    archived = request.args.get("archived") == "1"
    people = directory.people_of(owner_id(), archived=archived)
    return render_template(
        "people/index.html",
        people=people,
        cards=scorecards(owner_id(), [p.id for p in people]),
        archived=archived,
        form=PersonForm(formdata=None),
    )


@bp.post("/people")
def create():
    form = PersonForm()
    if _saved(form, None):
        flash(f"Added {form.name.data}.", "success")
        return redirect(url_for("people.index"), code=303)
    people = directory.people_of(owner_id())
    return render_template(
        "people/index.html",
        people=people,
        cards=scorecards(owner_id(), [p.id for p in people]),
        archived=False,
        form=form,
    ), 400


@bp.route("/people/<int:person_id>", methods=["GET", "POST"])
def show(person_id: int):
    """The person's page (scorecard, work, details); the details form posts here. One rule
    for both methods, so an id past the range is 404 whatever the method."""
    person = _person(person_id)
    if request.method == "GET":
        return _show(person, PersonForm(formdata=None, obj=person, data=_form_data(person)))
    form = PersonForm()
    if _saved(form, person):
        flash(f"Saved {person.name}.", "success")
        return redirect(url_for("people.show", person_id=person.id), code=303)
    return _show(person, form, 400)


@bp.post("/people/<int:person_id>/archive")
def archive(person_id: int):
    person = _person(person_id)
    restore = request.form.get("restore") == "1"
    directory.archive(person, not restore)
    if restore:
        flash(f"Restored {person.name}.", "success")
    else:
        flash(f"Archived {person.name}: their history stays; new jobs cannot go to them.", "info")
    return redirect(url_for("people.show", person_id=person.id), code=303)


def _saved(form: PersonForm, person: Person | None) -> bool:
    """Validate the form, then save through the directory; its refusals go on their field."""
    if not form.validate_on_submit():
        return False
    fields = form.fields_for_service()
    try:
        if person is None:
            directory.create(owner_id(), **fields)
        else:
            directory.update(person, **fields)
    except InvalidChange as exc:
        db.session.rollback()
        target = {"rate_cents": "rate"}.get(exc.field, exc.field)
        getattr(form, target, form.name).errors.append(str(exc))
        return False
    return True


def _form_data(person: Person) -> dict[str, Any]:
    return {"rate": amount_text(person.rate_cents) if person.rate_cents is not None else ""}


def _show(person: Person, form: PersonForm, status: int = 200):
    places = db.session.scalars(
        db.select(Assignment)
        .join(MicroJob, Assignment.job_id == MicroJob.id)
        .where(Assignment.person_id == person.id, MicroJob.owner_id == owner_id())
        .order_by(Assignment.id.desc())
        .limit(50)
    ).all()
    jobs = {j.id: j for j in db.session.scalars(
        db.select(MicroJob).where(MicroJob.id.in_({p.job_id for p in places}))
    )}  # fmt: skip
    return render_template(
        "people/show.html",
        person=person,
        card=scorecard(person),
        form=form,
        places=places,
        jobs=jobs,
    ), status


# --- pay for accepted work, from the job page -------------------------------------------------


def job_people(job: MicroJob) -> dict[str, Any]:
    """What the job page shows about people: the job's person, and each place with who
    holds it and, for accepted work, a form to record a payment."""
    ids = {job.person_id} | {p.person_id for p in job.assignment_rows}
    ids.discard(None)
    names = dict(
        db.session.execute(
            db.select(Person.id, Person.name).where(
                Person.id.in_(ids), Person.owner_id == job.owner_id
            )
        ).all()
    ) if ids else {}  # fmt: skip
    forms = {
        p.id: PaymentForm(formdata=None, data={"paid_before": p.paid_cents})
        for p in job.assignment_rows
        if p.status in pay.PAYABLE
    }
    return {"person_names": names, "payment_forms": forms}


@bp.post("/jobs/<int:job_id>/assignments/<int:assignment_id>/paid")
def mark_paid(job_id: int, assignment_id: int):
    job = get_owned(MicroJob, job_id, owner_id())
    place = db.session.get(Assignment, assignment_id)
    if place is None or place.job_id != job.id:
        abort(404)
    here = url_for("jobs.show", job_id=job.id, _anchor=f"assignment-{place.id}")
    form = PaymentForm()
    if not form.validate_on_submit():
        problems = [f"{form[n].label.text}: {e}" for n in form.errors for e in form.errors[n]]
        flash("Not recorded. " + "; ".join(problems), "error")
        return redirect(here, code=303)
    try:
        pay.record_payment(place, form.amount.cents, actor(), paid_before=form.paid_before.data)
    except REFUSALS as exc:
        refuse(exc)
    else:
        who = db.session.get(Person, place.person_id).name if place.person_id else "the worker"
        flash(
            f"Recorded {format_cents(form.amount.cents, job.goal.currency)} paid to {who} "
            f"for “{job.title}”.",
            "success",
        )
    return redirect(here, code=303)
