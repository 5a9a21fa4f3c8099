"""A job's text (title, brief, acceptance criteria) in versions.

Once an order holds a version (a Dispatch records the `job_version` it went out with), that
text is fixed like the order's price: an edit makes a new version instead, the old text is
kept as a snapshot, and the next order goes out with the newest. A version no order has
held yet is simply edited in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dispatcher.extensions import db
from dispatcher.models import Dispatch, JobVersion, MicroJob

#: What a version is made of.
TEXT_FIELDS = ("title", "brief", "acceptance_criteria")


@dataclass(frozen=True)
class JobText:
    version: int
    title: str
    brief: str
    acceptance_criteria: tuple[str, ...]


def held(job: MicroJob) -> bool:
    """Whether an order has gone out with the job's current version."""
    return (
        db.session.scalar(
            select(Dispatch.id)
            .where(Dispatch.job_id == job.id, Dispatch.job_version == job.version)
            .limit(1)
        )
        is not None
    )


def bump_if_held(job: MicroJob, changed: dict[str, Any]) -> int | None:
    """Before `changed` is applied: if it touches the text and an order holds the current
    version, keep a snapshot of that version and move the job to the next one. Returns the
    new version number, or None when the edit stays in place. The caller commits."""
    if not changed.keys() & set(TEXT_FIELDS) or not held(job):
        return None
    if (
        db.session.scalar(
            select(JobVersion.id).where(
                JobVersion.job_id == job.id, JobVersion.version == job.version
            )
        )
        is None
    ):
        db.session.add(
            JobVersion(
                job_id=job.id,
                version=job.version,
                title=job.title,
                brief=job.brief or "",
                acceptance_criteria=list(job.acceptance_criteria or []),
            )
        )
    job.version += 1
    return job.version


def text_at(job: MicroJob, version: int | None) -> JobText:
    """The job's text at `version`: its snapshot if one was kept, else the current text
    (the current version, or an order placed before versions were recorded)."""
    if version is not None and version != job.version:
        kept = db.session.scalar(
            select(JobVersion).where(JobVersion.job_id == job.id, JobVersion.version == version)
        )
        if kept is not None:
            return JobText(version, kept.title, kept.brief, tuple(kept.acceptance_criteria))
    return JobText(job.version, job.title, job.brief or "", tuple(job.acceptance_criteria or ()))


def history(job: MicroJob) -> list[JobText]:
    """Every kept version, oldest first, then the current one."""
    kept = db.session.scalars(
        select(JobVersion).where(JobVersion.job_id == job.id).order_by(JobVersion.version)
    ).all()
    out = [JobText(v.version, v.title, v.brief, tuple(v.acceptance_criteria)) for v in kept]
    return [*out, text_at(job, job.version)]
