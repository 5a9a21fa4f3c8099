"""teammate channels: submission links (token hashes) and the outbox of notices to people

Revision ID: 9ce4cb9fe2d3
Revises: b25cb0a6d991
Create Date: 2026-12-01 19:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "9ce4cb9fe2d3"
down_revision = "b25cb0a6d991"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "submission_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.id"],
            name=op.f("fk_submission_links_assignment_id_assignments"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_submission_links_token_hash")),
    )  # fmt: skip
    with op.batch_alter_table("submission_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_links_assignment_id"), ["assignment_id"], unique=False
        )
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("assignment_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("with_link", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.id"],
            name=op.f("fk_outbox_messages_assignment_id_assignments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"],
            name=op.f("fk_outbox_messages_connection_id_connections"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_messages_key")),
    )  # fmt: skip
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        for column in ("assignment_id", "connection_id", "state"):
            batch_op.create_index(
                batch_op.f(f"ix_outbox_messages_{column}"), [column], unique=False
            )


def downgrade():
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        for column in ("assignment_id", "connection_id", "state"):
            batch_op.drop_index(batch_op.f(f"ix_outbox_messages_{column}"))
    op.drop_table("outbox_messages")
    with op.batch_alter_table("submission_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_links_assignment_id"))
    op.drop_table("submission_links")
