"""sessions and password resets: a session version on owners, single-use reset links

Owner.session_version is part of the login session's id: raising it ends every session of
the owner (log-out, password change). password_resets keeps only the SHA-256 of each link.

Revision ID: c4e1a7d93b25
Revises: e705495c1515
Create Date: 2026-12-01 16:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4e1a7d93b25"
down_revision = "e705495c1515"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["owners.id"],
            name=op.f("fk_password_resets_owner_id_owners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_password_resets_owner_id"), ["owner_id"], unique=False)


def downgrade():
    with op.batch_alter_table("password_resets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_resets_owner_id"))
    op.drop_table("password_resets")
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.drop_column("session_version")
