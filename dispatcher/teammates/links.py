"""Submission links: the signed, expiring link a teammate acts through, scoped to one
assignment (DESIGN rule 7).

The raw token (32 random bytes, url-safe) exists only in the link handed out; the database
keeps its SHA-256. A link is found by looking its hash up (an indexed equality on a digest of
a secret the caller does not know, so timing reveals nothing about stored tokens), then
checked for revocation and expiry."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from dispatcher.errors import DispatcherError
from dispatcher.extensions import db
from dispatcher.models import Assignment, MicroJob, SubmissionLink
from dispatcher.models._base import utcnow

PATH = "/t/"


class LinkGone(DispatcherError):
    """A link that existed but was revoked or has expired (answered 410)."""


class LinkUnknown(DispatcherError):
    """No such link: forged, mistyped or cut short (answered 404)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def expiry_for(job: MicroJob, now: datetime | None = None) -> datetime:
    """SUBMISSION_LINK_DAYS from now, but never before the due date plus the grace days."""
    settings = current_app.config["SETTINGS"]
    now = now or utcnow()
    expires = now + timedelta(days=settings.submission_link_days)
    if job.due_date is not None:
        due = datetime(job.due_date.year, job.due_date.month, job.due_date.day, tzinfo=now.tzinfo)
        expires = max(expires, due + timedelta(days=settings.submission_link_grace_days + 1))
    return expires


def mint(assignment: Assignment) -> str:
    """A new link to `assignment`'s submission page: the full URL. Only its hash is stored
    (in the caller's transaction)."""
    settings = current_app.config["SETTINGS"]
    token = secrets.token_urlsafe(32)
    job = db.session.get(MicroJob, assignment.job_id)
    db.session.add(
        SubmissionLink(
            assignment_id=assignment.id, token_hash=token_hash(token), expires_at=expiry_for(job)
        )
    )
    return settings.public_base_url.rstrip("/") + PATH + token


def resolve(token: str) -> SubmissionLink:
    """The live link for `token`; LinkUnknown or LinkGone otherwise (never the job)."""
    if not token or len(token) > 200:
        raise LinkUnknown("no such link")
    link = db.session.scalars(
        select(SubmissionLink).where(SubmissionLink.token_hash == token_hash(token))
    ).first()
    if link is None:
        raise LinkUnknown("no such link")
    if link.revoked_at is not None:
        raise LinkGone("this link was withdrawn by the person who sent it")
    if link.expires_at <= utcnow():
        raise LinkGone("this link has expired")
    return link


def revoke_all(assignment_ids: list[int]) -> int:
    """Withdraw every live link of these assignments (the owner's "revoke"); how many."""
    if not assignment_ids:
        return 0
    return db.session.execute(
        update(SubmissionLink)
        .where(
            SubmissionLink.assignment_id.in_(assignment_ids),
            SubmissionLink.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def live_links(job: MicroJob) -> list[SubmissionLink]:
    """The job's links that still work, newest first (the job page lists them)."""
    return list(
        db.session.scalars(
            select(SubmissionLink)
            .join(Assignment, SubmissionLink.assignment_id == Assignment.id)
            .where(
                Assignment.job_id == job.id,
                SubmissionLink.revoked_at.is_(None),
                SubmissionLink.expires_at > utcnow(),
            )
            .order_by(SubmissionLink.id.desc())
        )
    )
