"""job free flag: a job that pays nothing says so

A paid channel refuses a job with no price unless the owner marked it free (issue 11), so
a forgotten price is never sent out as a 0.00 order. Existing jobs are not free.

Revision ID: a9fb8b4a89f9
Revises: c4e1a7d93b25
Create Date: 2026-12-01 16:20:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "a9fb8b4a89f9"
down_revision = "c4e1a7d93b25"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("micro_jobs") as batch:
        batch.add_column(sa.Column("free", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("micro_jobs") as batch:
        batch.alter_column("free", server_default=None)


def downgrade():
    with op.batch_alter_table("micro_jobs") as batch:
        batch.drop_column("free")
