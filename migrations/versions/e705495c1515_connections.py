"""connections: each owner's channels, credentials encrypted at rest, a webhook path and
secret per connection; jobs, dispatches and inbound events name their connection, and inbound
events are unique per (connection, event id) instead of per adapter.

Revision ID: e705495c1515
Revises: ad248e77b844
Create Date: 2026-12-01 16:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e705495c1515"
down_revision = "ad248e77b844"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("adapter", sa.String(length=60), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("credentials_sealed", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("webhook_path", sa.String(length=64), nullable=False),
        sa.Column("webhook_secret_sealed", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_ok", sa.Boolean(), nullable=True),
        sa.Column("check_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"], name=op.f("fk_connections_owner_id_owners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("webhook_path", name=op.f("uq_connections_webhook_path")),
    )  # fmt: skip
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connections_owner_id"), ["owner_id"], unique=False)
    for table in ("micro_jobs", "dispatches", "inbound_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("connection_id", sa.Integer(), nullable=True))
            batch_op.create_index(
                batch_op.f(f"ix_{table}_connection_id"), ["connection_id"], unique=False
            )
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_connection_id_connections"),
                "connections", ["connection_id"], ["id"], ondelete="SET NULL",
            )  # fmt: skip
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_events_adapter_event_id", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_inbound_events_connection_id_event_id"), ["connection_id", "event_id"]
        )


def downgrade():
    with op.batch_alter_table("inbound_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inbound_events_connection_id_event_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_inbound_events_adapter_event_id", ["adapter", "event_id"]
        )
    for table in ("inbound_events", "dispatches", "micro_jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_connection_id_connections", type_="foreignkey")
            batch_op.drop_index(f"ix_{table}_connection_id")
            batch_op.drop_column("connection_id")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connections_owner_id"))
    op.drop_table("connections")
