"""owner is_admin: operators who may open the RQ dashboard at /admin/rq

Revision ID: b25cb0a6d991
Revises: 90946cf714e5
Create Date: 2026-12-01 19:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b25cb0a6d991"
down_revision = "90946cf714e5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.drop_column("is_admin")
