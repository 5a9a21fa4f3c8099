"""GET/POST /t/<token>: the teammate's submission page. No account, no JavaScript needed; a
CSRF-protected form whose every action (take, ask, decline, hand in) is stored and applied
through the inbound path (teammates/intake.py), exactly as a platform's webhook would be.

A forged link gets 404, a revoked or expired one 410, each with a sentence and never the job.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request
from flask_wtf import FlaskForm
from wtforms import HiddenField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import Length, Optional, Regexp

from dispatcher import versions
from dispatcher.extensions import db
from dispatcher.lifecycle import AssignmentState
from dispatcher.models import Dispatch, MicroJob, Review
from dispatcher.teammates import files, intake, links, questions

bp = Blueprint("teammate_page", __name__)

A = AssignmentState
#: what the page offers in each state of the assignment
ACTIONS = {
    A.OPEN: ("take", "question", "decline", "submit"),
    A.TAKEN: ("question", "decline", "submit"),
    A.REVISION_REQUESTED: ("question", "submit"),
    A.SUBMITTED: ("question",),
}
DONE = {
    "take": "Thanks: the job is yours.",
    "question": "Your question was sent.",
    "decline": "You gave the job back. Thank you for saying so.",
    "submit": "Your work was handed in for review.",
}


class PageForm(FlaskForm):
    nonce = HiddenField(validators=[Regexp(r"^[A-Za-z0-9_-]{16,64}$", message="form expired")])
    text = TextAreaField(
        "Your work, or your question",
        validators=[Optional(), Length(max=20000, message="at most 20000 characters")],
    )
    url = StringField(
        "A link to your work",
        validators=[Optional(), Length(max=1000, message="at most 1000 characters")],
    )
    files = MultipleFileField("Files")


def _gone(status: int, sentence: str):
    return render_template("teammates/gone.html", sentence=sentence), status


@bp.route("/t/<token>", methods=["GET", "POST"])
def page(token: str):
    try:
        link = links.resolve(token)
    except links.LinkUnknown:
        return _gone(404, "This link does not work. Check that you copied all of it, or ask "
                     "the person who sent it for a new one.")  # fmt: skip
    except links.LinkGone as exc:
        return _gone(410, f"{str(exc)[:1].upper()}{str(exc)[1:]}. Ask the person who sent it "
                     "for a new one.")  # fmt: skip
    place = link.assignment
    if request.method == "POST":
        too_big = _too_big()
        if too_big is not None:
            return too_big
        form = PageForm()
        error = _act(form, place)
        if error is None:
            return redirect(request.path, code=303)
        return _render(place, form, error, 400)
    return _render(place, PageForm(formdata=None), None, 200)


def _too_big():
    settings = current_app.config["SETTINGS"]
    limit = settings.upload_max_bytes * files.MAX_FILES + 256 * 1024
    if (request.content_length or 0) > min(limit, current_app.config["MAX_CONTENT_LENGTH"]):
        each = settings.upload_max_bytes // (1024 * 1024)
        return _gone(
            413,
            f"That is more than this page takes at once (up to {files.MAX_FILES} files of "
            f"{each} MiB each). Go back and hand in fewer or smaller files, or a link.",
        )
    return None


def _act(form: PageForm, place) -> str | None:
    """Do what the form asks; None when done (flashed), else the error to show."""
    action = request.form.get("action", "")
    if not form.validate_on_submit():
        if form.nonce.errors or getattr(form, "csrf_token", None) and form.csrf_token.errors:
            return "This form has expired: reload the page and try again."
        return "Check what you entered: " + "; ".join(
            e for f in (form.text, form.url) for e in f.errors
        )
    nonce = form.nonce.data
    dispatch = db.session.get(Dispatch, place.dispatch_id)
    if action in DONE and intake.already_stored(dispatch, nonce):
        flash(DONE[action], "success")  # the same form sent twice: done once, answered alike
        return None
    if action not in ACTIONS.get(place.status, ()):
        return "That is no longer possible for this job (reload the page to see where it is)."
    if not dispatch.external_id:  # the link went out while the order was being recorded
        return "This job is still being sent to you: try again in a minute."
    text = (form.text.data or "").strip()
    url = (form.url.data or "").strip()
    fields: dict = {}
    if action == "question":
        if not text:
            form.text.errors = [*form.text.errors, "Write your question first."]
            return "Write your question first."
        fields["text"] = text
    elif action == "decline":
        fields["text"] = text
    elif action == "submit":
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
            form.url.errors = [*form.url.errors, "Give a full link, starting with https://"]
            return "The link must start with http:// or https://."
        try:
            checked = files.check(request.files.getlist(form.files.name))
        except files.UploadRefused as exc:
            form.files.errors = [*form.files.errors, str(exc)]
            return str(exc)
        if not (text or url or checked):
            return "Hand in some text, a link or a file."
        dispatch = db.session.get(Dispatch, place.dispatch_id)
        saved = (
            [] if intake.already_stored(dispatch, nonce) else files.save(place.id, nonce, checked)
        )
        fields.update(text=text, url=url or None, files=saved)
    intake.record(place, action, nonce, **fields)
    flash(DONE[action], "success")
    return None


def _render(place, form: PageForm, error: str | None, status: int):
    job = db.session.get(MicroJob, place.job_id)
    dispatch = db.session.get(Dispatch, place.dispatch_id)
    text = versions.text_at(job, dispatch.job_version)
    form.nonce.data = secrets.token_urlsafe(24)  # a fresh one for each page shown
    feedback = None
    if place.status == A.REVISION_REQUESTED:
        review = db.session.scalars(
            db.select(Review)
            .join(Review.delivery)
            .where(Review.decision == "revise", Review.delivery.has(assignment_id=place.id))
            .order_by(Review.id.desc())
        ).first()
        feedback = review.feedback if review else None
    return render_template(
        "teammates/page.html",
        job=job,
        text=text,
        place=place,
        currency=dispatch.currency,
        actions=ACTIONS.get(place.status, ()),
        form=form,
        error=error,
        feedback=feedback,
        thread=questions.thread(place),
    ), status
