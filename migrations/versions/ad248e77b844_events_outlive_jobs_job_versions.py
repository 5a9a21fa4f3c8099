"""events outlive their jobs and goals; job versions

Events are the audit trail: deleting a job or a goal now sets their reference NULL instead of
deleting them. A job's text (title, brief, acceptance criteria) gets versions: `version` on
the job, a snapshot per version an order held (`job_versions`), and the version each
dispatch went out with (`dispatches.job_version`, NULL for orders placed before this).

Revision ID: ad248e77b844
Revises: c22a8d97cf01
Create Date: 2026-12-01 16:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "ad248e77b844"
down_revision = "c22a8d97cf01"
branch_labels = None
depends_on = None

EVENT_REFS = (("goal_id", "goals"), ("job_id", "micro_jobs"))


def _event_refs(ondelete: str) -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        for column, table in EVENT_REFS:
            name = f"fk_events_{column}_{table}"
            batch_op.drop_constraint(name, type_="foreignkey")
            batch_op.create_foreign_key(name, table, [column], ["id"], ondelete=ondelete)


def upgrade():
    # SQLite enforced no foreign keys before: events of rows deleted then point nowhere.
    for column, table in EVENT_REFS:
        op.execute(
            f"UPDATE events SET {column} = NULL WHERE {column} IS NOT NULL "
            f"AND {column} NOT IN (SELECT id FROM {table})"
        )
    _event_refs("SET NULL")
    op.create_table(
        "job_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("brief", sa.Text(), nullable=False),
        sa.Column("acceptance_criteria", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["micro_jobs.id"],
            name=op.f("fk_job_versions_job_id_micro_jobs"),
            ondelete="CASCADE",
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_versions")),
        sa.UniqueConstraint("job_id", "version", name=op.f("uq_job_versions_job_id_version")),
    )
    with op.batch_alter_table("job_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_versions_job_id"), ["job_id"], unique=False)
    with op.batch_alter_table("micro_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("job_version", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.drop_column("job_version")
    with op.batch_alter_table("micro_jobs", schema=None) as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("job_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_versions_job_id"))
    op.drop_table("job_versions")
    _event_refs("CASCADE")
