"""Row locks that work the same on SQLite and PostgreSQL.

Workers, webhooks and owners change the same job from different processes. Reading a job's
status and writing the next one must not interleave with another writer, or the last commit
silently wins (a lost update). `lock_job` starts the transaction with a write to the job's
row: PostgreSQL then holds that row's lock until commit, SQLite holds its one write lock (and
pysqlite opens the transaction at that first write), and the reload after it sees every
commit made before the lock was granted. It is a portable SELECT ... FOR UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select, update

from dispatcher.extensions import db
from dispatcher.models import Dispatch, MicroJob
from dispatcher.models._base import utcnow

_RELATIONSHIPS = [r.key for r in sa_inspect(MicroJob).relationships]


def lock_job(job: MicroJob, *also: Dispatch) -> MicroJob:
    """Lock the job's row for the rest of this transaction; reload it (and `also`).

    The write returns the row (UPDATE ... RETURNING) and the job is reloaded from it: one
    statement, not the write and a SELECT; its relationships are expired as a refresh would."""
    db.session.execute(
        update(MicroJob)
        .where(MicroJob.id == job.id)
        .values(updated_at=utcnow())
        .returning(MicroJob)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    db.session.expire(job, _RELATIONSHIPS)
    for row in also:
        db.session.refresh(row)
    return job


def lock_jobs(jobs: Sequence[MicroJob]) -> None:
    """`lock_job` for many jobs in one statement (a batch's placements): the rows are locked
    in id order (FOR UPDATE in the sub-select, on PostgreSQL; SQLite's one write lock covers
    them all), so two batches never wait on each other in a cycle, and reloaded."""
    ids = sorted({job.id for job in jobs})
    ordered = select(MicroJob.id).where(MicroJob.id.in_(ids)).order_by(MicroJob.id)
    db.session.execute(
        update(MicroJob)
        .where(MicroJob.id.in_(ordered.with_for_update()))
        .values(updated_at=utcnow())
        .returning(MicroJob)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).all()
    for job in jobs:
        db.session.expire(job, _RELATIONSHIPS)
