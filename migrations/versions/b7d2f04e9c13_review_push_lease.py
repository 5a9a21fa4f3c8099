"""review push lease: one attempt at a time tells the platform the owner's decision

A worker judged dead while it still runs (its liveness lost with Redis) had its push run again
beside it: both found nothing held at the platform yet and both sent the decision. The lease
makes the second attempt wait until the first has settled or its lease has run out.

Revision ID: b7d2f04e9c13
Revises: a9fb8b4a89f9
Create Date: 2026-12-01 18:35:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b7d2f04e9c13"
down_revision = "a9fb8b4a89f9"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("push_lease_until", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("push_lease_until")
