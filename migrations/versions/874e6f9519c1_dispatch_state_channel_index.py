"""dispatches: one index on (state, adapter, connection_id, id) instead of the one on state

The batch claim reads a channel's due dispatches in id order from it, up to the batch's
size, whatever the planner's statistics say (issue 12); every look-up by state uses its
first column as it used the old index.

Revision ID: 874e6f9519c1
Revises: 9ce4cb9fe2d3
Create Date: 2026-12-02 08:00:00

"""

from alembic import op

revision = "874e6f9519c1"
down_revision = "9ce4cb9fe2d3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dispatches_state_channel",
            ["state", "adapter", "connection_id", "id"],
            unique=False,
        )
        batch_op.drop_index(batch_op.f("ix_dispatches_state"))


def downgrade():
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dispatches_state"), ["state"], unique=False)
        batch_op.drop_index("ix_dispatches_state_channel")
