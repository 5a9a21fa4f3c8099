"""people: the owner's teammates and regular freelancers; a job may name one, and each
assignment records whose place it is (the scorecards read it)

Revision ID: d3a7f1c09e52
Revises: b7d2f04e9c13
Create Date: 2026-12-01 19:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d3a7f1c09e52"
down_revision = "b7d2f04e9c13"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("slack_handle", sa.String(length=120), nullable=False),
        sa.Column("trello_handle", sa.String(length=120), nullable=False),
        sa.Column("asana_handle", sa.String(length=120), nullable=False),
        sa.Column("endpoint_url", sa.String(length=1000), nullable=False),
        sa.Column("rate_cents", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["owners.id"], name=op.f("fk_people_owner_id_owners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
    )  # fmt: skip
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_people_owner_id"), ["owner_id"], unique=False)
    for table in ("micro_jobs", "assignments"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_person_id"), ["person_id"], unique=False)
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_person_id_people"),
                "people", ["person_id"], ["id"], ondelete="SET NULL",
            )  # fmt: skip


def downgrade():
    for table in ("assignments", "micro_jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_person_id_people", type_="foreignkey")
            batch_op.drop_index(batch_op.f(f"ix_{table}_person_id"))
            batch_op.drop_column("person_id")
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_people_owner_id"))
    op.drop_table("people")
