"""The owner's side of teammate channels: withdraw a job's submission links, answer a
question, download a handed-in file, and read the local mailbox. Every route needs the
logged-in owner (checked once, for the blueprint) and sees only the owner's rows."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, render_template, request, send_file
from flask_login import current_user, login_required
from sqlalchemy import select

from adapters.email import file_name, mailbox_dir
from dispatcher import connections
from dispatcher.errors import NotFound
from dispatcher.extensions import db
from dispatcher.models import Assignment, Delivery, Event, MicroJob
from dispatcher.scoping import get_owned
from dispatcher.teammates import files, links, questions
from dispatcher.web.common import actor, back, owner_id

bp = Blueprint("teammates", __name__)


@bp.before_request
@login_required
def _owner_only():
    return None


def _job(job_id: int) -> MicroJob:
    return get_owned(MicroJob, job_id, owner_id())


def _job_url(job: MicroJob, anchor: str = "teammate") -> str:
    from flask import url_for

    return url_for("jobs.show", job_id=job.id, _anchor=anchor)


@bp.post("/jobs/<int:job_id>/links/revoke")
def revoke_links(job_id: int):
    job = _job(job_id)
    ids = list(db.session.scalars(select(Assignment.id).where(Assignment.job_id == job.id)))
    count = links.revoke_all(ids)
    db.session.commit()
    if count:
        flash(f"Withdrew {count} link{'s' if count != 1 else ''}: they now show “link "
              "withdrawn” and nothing of the job.", "success")  # fmt: skip
    else:
        flash("No working links to withdraw.", "success")
    return back(_job_url(job))


@bp.post("/jobs/<int:job_id>/questions/<int:event_id>/answer")
def answer(job_id: int, event_id: int):
    job = _job(job_id)
    question = db.session.get(Event, event_id)
    if question is None or question.owner_id != owner_id():
        raise NotFound("no such question")
    try:
        questions.answer(job, question, request.form.get("text", ""), actor=actor())
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc)[:1].upper() + str(exc)[1:], "error")
        return back(_job_url(job, f"question-{event_id}"))
    db.session.commit()
    flash("Answer sent.", "success")
    return back(_job_url(job, f"question-{event_id}"))


@bp.get("/deliveries/<int:delivery_id>/files/<file_id>")
def download(delivery_id: int, file_id: str):
    delivery = get_owned(Delivery, delivery_id, owner_id())
    entry = next((f for f in (delivery.raw or {}).get("files") or [] if f.get("id") == file_id),
                 None)  # fmt: skip
    if entry is None or delivery.assignment_id is None:
        abort(404)
    path = files.path_of(delivery.assignment_id, file_id)
    if not path.is_file():
        abort(404)
    response = send_file(
        io.BytesIO(path.read_bytes()),  # small (UPLOAD_MAX_BYTES): no file handle left open
        mimetype="application/octet-stream",
        as_attachment=True,
        download_name=entry.get("name") or "file",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def _mail_connections():
    return [c for c in connections.for_owner(owner_id()) if c.adapter == "email"]


@bp.get("/mailbox")
def mailbox():
    """The mail that went to the owner's teammates while no SMTP server is configured."""
    from email import message_from_bytes, policy

    settings = current_app.config["SETTINGS"]
    letters = []
    for connection in _mail_connections():
        box = mailbox_dir(settings.instance_path, connection.id)
        for path in sorted(box.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            letters.append((connection, path.name, message))
    return render_template("teammates/mailbox.html", letters=letters,
                           smtp=bool(settings.smtp_url), owner=current_user)  # fmt: skip


@bp.get("/mailbox/<int:connection_id>/<name>")
def letter(connection_id: int, name: str):
    from email import message_from_bytes, policy

    connection = connections.get(connection_id, owner_id())
    settings = current_app.config["SETTINGS"]
    if name != file_name(name.removesuffix(".eml")):
        abort(404)
    path: Path = mailbox_dir(settings.instance_path, connection.id) / name
    if not path.is_file():
        abort(404)
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    body = message.get_body(preferencelist=("plain",)).get_content()
    return render_template("teammates/letter.html", message=message, body=body)


def panel(job: MicroJob) -> dict:
    """What the job page shows for a teammate job: live links and the questions."""
    return {"links": links.live_links(job), "questions": questions.for_job(job)}
