"""notifications: the owner's choice (email at once, in the digest, or off; a Slack webhook)
and one claim per (owner, event, channel) so that each notification is sent once

Revision ID: 90946cf714e5
Revises: d3a7f1c09e52
Create Date: 2026-12-01 19:45:00

"""

import sqlalchemy as sa
from alembic import op

revision = "90946cf714e5"
down_revision = "d3a7f1c09e52"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_settings",
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=10), nullable=False),
        sa.Column("slack_url_sealed", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"],
            name=op.f("fk_notification_settings_owner_id_owners"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner_id", name=op.f("pk_notification_settings")),
    )  # fmt: skip
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("via", sa.String(length=10), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"], name=op.f("fk_notifications_owner_id_owners"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_notifications_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "owner_id", "event_id", "channel",
            name=op.f("uq_notifications_owner_id_event_id_channel"),
        ),
    )  # fmt: skip
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_event_id"), ["event_id"], unique=False)


def downgrade():
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_event_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_owner_id"))
    op.drop_table("notifications")
    op.drop_table("notification_settings")
