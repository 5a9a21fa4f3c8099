"""The review queue and the three decisions on a delivery: accept (pay, rate), ask for a
revision, reject. The decisions are dispatcher/dispatch/review.py's; this module only takes
the forms.

A decision can be made on the queue or on the job's page (`origin`); a form that fails comes
back on the page it was sent from, with its errors and what was typed. The queue's script
posts the same forms with `X-Fragment: 1` and gets back only the delivery's item (see
web/review_fragments.py), so the queue works with and without JavaScript.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_required
from flask_wtf import FlaskForm

from dispatcher import review_queue
from dispatcher.dispatch import review as decisions
from dispatcher.errors import BudgetExceeded, InvalidTransition, Unsupported
from dispatcher.extensions import db
from dispatcher.forms import AcceptForm, RejectForm, RevisionForm, amount_text
from dispatcher.http_errors import render_error
from dispatcher.models import Delivery
from dispatcher.scoping import get_owned
from dispatcher.web.common import actor, back, owner_id, refuse
from dispatcher.web.review_forms import review_forms
from dispatcher.web.review_fragments import decided, refused, retry, wants_fragment

bp = Blueprint("review", __name__)

#: Refusals that are not about what was typed: shown as a message on the next page.
STATE_REFUSALS = (BudgetExceeded, InvalidTransition, Unsupported)


def _queue_url() -> str:
    return url_for("review.queue")


@bp.get("/review")
@login_required
def queue():
    try:
        flt = review_queue.QueueFilter.from_args(request.args)
    except review_queue.BadFilter as exc:
        return render_error(400, "Bad filter", str(exc))
    return _render_queue(flt=flt)


def _render_queue(
    status: int = 200,
    given: dict[int, dict[str, FlaskForm]] | None = None,
    flt: review_queue.QueueFilter | None = None,
):
    given = given or {}
    flt = flt or review_queue.QueueFilter()
    deliveries = review_queue.pending(owner_id(), flt)
    goals, links = review_queue.filter_choices(owner_id())
    return render_template(
        "review/queue.html",
        deliveries=deliveries,
        review_forms={d.id: review_forms(d, given.get(d.id)) for d in deliveries},
        open_forms={(k, name) for k, v in given.items() for name in v},
        flt=flt,
        goals=goals,
        links=links,
        here=url_for("review.queue", **flt.query()),
    ), status


@bp.post("/review/accept-selected")
@login_required
def accept_selected():
    """Accept every ticked delivery at its price: one POST, each under its own lock."""
    raw = request.form.getlist("ids")
    if not raw:
        flash("Tick the deliveries to accept first.", "error")
        return back(_queue_url())
    if not all(value.strip().isdigit() for value in raw):
        return render_error(400, "Bad selection", "the selected ids must be numbers")
    try:
        result = review_queue.accept_at_price(
            owner_id(), [int(value) for value in raw], actor=actor()
        )
    except ValueError as exc:
        return render_error(400, "Bad selection", str(exc))
    if result.accepted:
        n = len(result.accepted)
        flash(f"Accepted {n} {'delivery' if n == 1 else 'deliveries'} at their price.", "success")
    if result.refused:
        reasons = "; ".join(f"“{title}”: {reason}" for title, reason in result.refused)
        flash(f"Not accepted ({len(result.refused)}): {reasons}", "error")
    return back(_queue_url())


def _delivery(delivery_id: int) -> Delivery:
    return get_owned(Delivery, delivery_id, owner_id())


def _again(delivery: Delivery, name: str, form: FlaskForm):
    """Show the failed form again where it was sent from (status 400)."""
    given = {delivery.id: {name: form}}
    if wants_fragment():
        return retry(delivery, given)
    if request.form.get("origin") == "job":
        from dispatcher.web.jobs import render_job

        return render_job(delivery.job, 400, given)
    return _render_queue(400, given)


@bp.get("/deliveries/<int:delivery_id>")
@login_required
def show(delivery_id: int):
    delivery = _delivery(delivery_id)
    return redirect(url_for("jobs.show", job_id=delivery.job_id, _anchor=f"delivery-{delivery.id}"))


@bp.post("/deliveries/<int:delivery_id>/accept")
@login_required
def accept(delivery_id: int):
    delivery = _delivery(delivery_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        return _again(delivery, "accept", form)
    job = delivery.job
    try:
        review = decisions.accept(
            delivery, payout_cents=form.payout.cents, rating=form.rating_value, actor=actor()
        )
    except STATE_REFUSALS as exc:
        if wants_fragment():
            return refused(delivery, exc)
        refuse(exc)
        return back(_queue_url())
    except ValueError as exc:
        db.session.rollback()
        form.payout.errors.append(str(exc))
        return _again(delivery, "accept", form)
    paid = amount_text(review.payout_cents) + " " + job.goal.currency
    done = f"Accepted “{job.title}”: paying {paid} once the platform confirms the payment."
    if wants_fragment():
        return decided(delivery, done)
    flash(done, "success")
    return back(_queue_url())


@bp.post("/deliveries/<int:delivery_id>/revise")
@login_required
def revise(delivery_id: int):
    delivery = _delivery(delivery_id)
    form = RevisionForm()
    if not form.validate_on_submit():
        return _again(delivery, "revise", form)
    try:
        decisions.request_revision(delivery, feedback=form.feedback.data, actor=actor())
    except STATE_REFUSALS as exc:
        if wants_fragment():
            return refused(delivery, exc)
        refuse(exc)
        return back(_queue_url())
    except ValueError as exc:
        db.session.rollback()
        form.feedback.errors.append(str(exc))
        return _again(delivery, "revise", form)
    done = f"Asked for a revision of “{delivery.job.title}”."
    if wants_fragment():
        return decided(delivery, done)
    flash(done, "success")
    return back(_queue_url())


@bp.post("/deliveries/<int:delivery_id>/reject")
@login_required
def reject(delivery_id: int):
    delivery = _delivery(delivery_id)
    form = RejectForm()
    if not form.validate_on_submit():
        return _again(delivery, "reject", form)
    try:
        decisions.reject(delivery, reason=form.reason.data, actor=actor())
    except STATE_REFUSALS as exc:
        if wants_fragment():
            return refused(delivery, exc)
        refuse(exc)
        return back(_queue_url())
    except ValueError as exc:
        db.session.rollback()
        form.reason.errors.append(str(exc))
        return _again(delivery, "reject", form)
    done = (
        f"Rejected “{delivery.job.title}”; its money is released. Once every assignment "
        "is settled you can send the missing ones out again."
    )
    if wants_fragment():
        return decided(delivery, done)
    flash(done, "success")
    return back(_queue_url())
