"""The Today page (the owner's daily to-do list) and the digest settings.

The one-button actions carry only a CSRF token, which CSRFProtect checks for every POST.

Views only read `dispatcher.today` and call its actions; the lifecycle and the tree service
change the state. Expected refusals (a job that cannot be checked off in its state) come back
as a flash message on the page, not as an error page.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired, Optional, ValidationError

from dispatcher.errors import InvalidTransition
from dispatcher.extensions import db
from dispatcher.models import MicroJob
from dispatcher.scoping import get_owned
from dispatcher.today import (
    check_off,
    local_now,
    local_today,
    overdue_reason,
    plan_for,
    push_to_tomorrow,
    today_view,
)

bp = Blueprint("today", __name__)

HOURS = [SelectChoice("", "Off: no digest")] + [
    SelectChoice(str(h), f"{h:02d}:00") for h in range(24)
]


class PlanForm(FlaskForm):
    day = DateField("Plan for", validators=[Optional()])


class DigestSettingsForm(FlaskForm):
    timezone = StringField("Time zone", validators=[InputRequired()])
    digest_hour = SelectField("Send my digest at", choices=HOURS, validate_choice=True)

    def validate_timezone(self, field: StringField) -> None:
        field.data = (field.data or "").strip()
        if field.data not in _zones():
            raise ValidationError(
                f"{field.data!r} is not a time zone we know: use a name like Europe/Paris"
            )


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def _render_today(status: int = 200, plan_errors: dict[int, list[str]] | None = None):
    today = local_today(current_user)
    return render_template(
        "today/index.html",
        view=today_view(current_user, today),
        today=today,
        plan_errors=plan_errors or {},
        overdue_reason=overdue_reason,
    ), status


@bp.get("/today")
@login_required
def index():
    return _render_today()


def _job(job_id: int) -> MicroJob:
    return get_owned(MicroJob, job_id, current_user.id)


def _back():
    return redirect(url_for("today.index"), code=303)


@bp.post("/today/jobs/<int:job_id>/done")
@login_required
def done(job_id: int):
    job = _job(job_id)
    try:
        check_off(job, actor=f"owner:{current_user.id}")
    except InvalidTransition as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back()
    flash(f"Done: {job.title}", "success")
    return _back()


@bp.post("/today/jobs/<int:job_id>/plan")
@login_required
def plan(job_id: int):
    job = _job(job_id)
    form = PlanForm()
    if not form.validate_on_submit():
        errors = [e for errs in form.errors.values() for e in errs]
        return _render_today(400, {job.id: errors or ["give a date like 2025-03-14"]})
    return _apply_plan(job, form.day.data)


@bp.post("/today/jobs/<int:job_id>/tomorrow")
@login_required
def tomorrow(job_id: int):
    job = _job(job_id)
    try:
        push_to_tomorrow(job, local_today(current_user), actor=f"owner:{current_user.id}")
    except InvalidTransition as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back()
    flash(f"Moved to tomorrow: {job.title}", "success")
    return _back()


def _apply_plan(job: MicroJob, day: date | None):
    try:
        plan_for(job, day, actor=f"owner:{current_user.id}")
    except InvalidTransition as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back()
    flash(
        f"Planned for {day.isoformat()}: {job.title}" if day else f"Unplanned: {job.title}",
        "success",
    )
    return _back()


@bp.route("/settings/digest", methods=["GET", "POST"])
@login_required
def digest_settings():
    owner = current_user
    form = DigestSettingsForm(
        data={
            "timezone": owner.timezone or "UTC",
            "digest_hour": "" if owner.digest_hour is None else str(owner.digest_hour),
        }
        if request.method == "GET"
        else None
    )
    if form.validate_on_submit():
        owner.timezone = form.timezone.data
        owner.digest_hour = int(form.digest_hour.data) if form.digest_hour.data else None
        db.session.commit()
        flash("Digest settings saved", "success")
        return redirect(url_for("today.digest_settings"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "today/settings.html",
        form=form,
        zones=sorted(_zones()),
        local_time=local_now(owner),
    ), status
