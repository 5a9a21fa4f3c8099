"""polling: per-dispatch poll state, and where an inbound event came from

Revision ID: c22a8d97cf01
Revises: a5e1c0de8a01
Create Date: 2026-12-01 16:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "c22a8d97cf01"
down_revision = "a5e1c0de8a01"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "poll_states",
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.String(length=500), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idle_polls", sa.Integer(), nullable=False),
        sa.Column("polls", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dispatch_id"),
    )
    op.create_index("ix_poll_states_next_poll_at", "poll_states", ["next_poll_at"])
    with op.batch_alter_table("inbound_events") as batch:
        batch.add_column(
            sa.Column("source", sa.String(length=10), nullable=False, server_default="webhook")
        )


def downgrade():
    with op.batch_alter_table("inbound_events") as batch:
        batch.drop_column("source")
    op.drop_index("ix_poll_states_next_poll_at", table_name="poll_states")
    op.drop_table("poll_states")
