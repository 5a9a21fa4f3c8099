"""Row locks that work the same on SQLite and PostgreSQL.

Workers, webhooks and owners change the same job from different processes. Reading a job's
status and writing the next one must not interleave with another writer, or the last commit
silently wins (a lost update). `lock_job` starts the transaction with a write to the job's
row: PostgreSQL then holds that row's lock until commit, SQLite holds its one write lock (and
pysqlite opens the transaction at that first write), and the reload after it sees every
commit made before the lock was granted. It is a portable SELECT ... FOR UPDATE.

Every holder of a job's lock writes the job's row (never a bare SELECT ... FOR UPDATE): a
dispatch request's one-statement lock and read (request_reads.lock_and_read) relies on it
to tell that a holder committed after its snapshot.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm.attributes import set_committed_value

from dispatcher.extensions import db
from dispatcher.models import Dispatch, MicroJob
from dispatcher.models._base import utcnow

_RELATIONSHIPS = [r.key for r in sa_inspect(MicroJob).relationships]
#: the job's column attributes, in the order `_lock_statement` returns them
_COLUMN_KEYS = [prop.key for prop in sa_inspect(MicroJob).column_attrs]


@functools.cache
def _lock_statement() -> Update:
    table = MicroJob.__table__
    columns = job_columns()
    return (
        update(table)
        .where(table.c.id == bindparam("job_id"))
        .values(updated_at=bindparam("at"))
        .returning(*columns)
    )


def lock_job(job: MicroJob, *also: Dispatch) -> MicroJob:
    """Lock the job's row for the rest of this transaction; reload it (and `also`).

    The write returns the row (UPDATE ... RETURNING) and the job is reloaded from it: one
    statement, not the write and a SELECT; its relationships are expired as a refresh would.
    The statement is built once and run on Core, its columns set on the job as loaded values
    (issue 12: the ORM's UPDATE ... RETURNING with populate_existing cost ~1 ms of Python)."""
    db.session.flush()  # what the job holds unwritten is written first, as an autoflush did
    row = (
        db.session.connection()
        .execute(_lock_statement(), {"job_id": job.id, "at": utcnow()})
        .first()
    )
    if row is not None:  # a job deleted meanwhile is left as it was, as before
        load_locked(job, row)
    else:
        db.session.expire(job, _RELATIONSHIPS)
    for row in also:
        db.session.refresh(row)
    return job


def job_columns() -> list:
    """The job's columns, in the order `load_locked` takes their values."""
    return [prop.columns[0] for prop in sa_inspect(MicroJob).column_attrs]


def load_locked(job: MicroJob, values: Sequence) -> None:
    """Reload the job from the values of its locked row (`job_columns`' order) as loaded
    values; its relationships are expired, as a refresh would."""
    for key, value in zip(_COLUMN_KEYS, values, strict=True):
        set_committed_value(job, key, value)
    db.session.expire(job, _RELATIONSHIPS)


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
