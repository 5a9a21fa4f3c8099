"""A goal's results page: the metric against its target, burn-up, rollups, channels, and the
busy-work check. The numbers come from `dispatcher.results`; this module only shows them."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, FloatField, StringField
from wtforms.validators import InputRequired, Length

from dispatcher import results
from dispatcher.models import Goal
from dispatcher.money import format_cents
from dispatcher.people.scorecard import goal_people, job_person_names
from dispatcher.scoping import get_owned
from dispatcher.today import local_today, zone

bp = Blueprint("results", __name__)

EPOCH = date(1970, 1, 1)


class MetricForm(FlaskForm):
    on = DateField("Date", validators=[InputRequired(message="give the date of the reading")])
    value = FloatField("Value", validators=[InputRequired(message="give a number")])
    note = StringField("Note", validators=[Length(max=results.NOTE_MAX)])


@bp.app_template_filter("duration")
def duration(span: timedelta | None) -> str:
    """A turnaround as people say it: "45 min", "3 h 20 min", "2 d 4 h"; "—" when unknown."""
    if span is None:
        return "—"
    minutes = max(0, round(span.total_seconds() / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _day(d: date) -> int:
    """Days since 1970-01-01: a number Chart.js can put on a linear axis without a date
    adapter (the page turns it back into a date for the labels)."""
    return (d - EPOCH).days


def chart_data(series: results.MetricSeries, burn: results.BurnUp, today: date) -> dict:
    """What the page's charts draw, as plain JSON."""
    metric = {
        "name": series.metric_name or "result",
        "points": [{"x": _day(p.on), "y": p.value, "note": p.note} for p in series.points],
        "target": series.target,
        "baseline": series.baseline,
        "start": _day(series.start),
        "deadline": _day(series.deadline) if series.deadline else None,
        "today": _day(today),
    }
    if series.expected_on(series.start) is not None:
        metric["pace"] = [
            {"x": _day(series.start), "y": series.expected_on(series.start)},
            {"x": _day(series.deadline), "y": series.target},
        ]
    return {
        "metric": metric,
        "burnup": {
            "labels": [d.isoformat() for d in burn.days],
            "done": burn.done,
            "scope": burn.scope,
        },
    }


def _render(goal: Goal, form: MetricForm, status: int = 200):
    tz = zone(current_user.timezone)
    today = local_today(current_user)
    series = results.metric_series(goal, tz)
    burn = results.burnup(goal, today, tz)
    return render_template(
        "results/goal.html",
        goal=goal,
        form=form,
        today=today,
        series=series,
        rollup=results.rollup(goal),
        channels=results.channel_stats(current_user.id, goal.id),
        busy=results.busy_work(goal),
        charts=chart_data(series, burn, today),
        money=lambda cents: format_cents(cents, goal.currency),
        people=goal_people(goal),
        person_of_job=job_person_names(goal),
    ), status


@bp.get("/goals/<int:goal_id>/results")
@login_required
def show(goal_id: int):
    goal = get_owned(Goal, goal_id, current_user.id)
    form = MetricForm(data={"on": local_today(current_user)})
    return _render(goal, form)


@bp.post("/goals/<int:goal_id>/results/metric")
@login_required
def log_metric(goal_id: int):
    goal = get_owned(Goal, goal_id, current_user.id)
    form = MetricForm()
    if form.validate_on_submit():
        try:
            results.log_metric(
                goal,
                on=form.on.data,
                value=form.value.data,
                note_text=form.note.data or "",
                today=local_today(current_user),
                actor=f"owner:{current_user.id}",
            )
        except ValueError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"Logged {form.value.data:g} for {form.on.data.isoformat()}", "success")
            return redirect(url_for("results.show", goal_id=goal.id), code=303)
    return _render(goal, form, 400)
