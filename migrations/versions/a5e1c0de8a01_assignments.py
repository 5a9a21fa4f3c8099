"""assignments: one row per worker's place in an order; deliveries belong to one

Money moves from the whole job to each assignment (held, paid, fee). Existing orders are
backfilled with one assignment per place the job asked for; their deliveries are spread over
the places in the order they arrived, and each place takes the state its delivery (or the
order) says.

Revision ID: a5e1c0de8a01
Revises: 9b6de9a245e6
Create Date: 2026-12-01 16:20:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a5e1c0de8a01"
down_revision = "9b6de9a245e6"
branch_labels = None
depends_on = None

dispatches = sa.table(
    "dispatches", sa.column("id", sa.Integer), sa.column("job_id", sa.Integer),
    sa.column("state", sa.String),
)  # fmt: skip
jobs = sa.table(
    "micro_jobs", sa.column("id", sa.Integer), sa.column("status", sa.String),
    sa.column("assignments", sa.Integer), sa.column("price_cents", sa.Integer),
)  # fmt: skip
deliveries = sa.table(
    "deliveries", sa.column("id", sa.Integer), sa.column("dispatch_id", sa.Integer),
    sa.column("assignment_id", sa.Integer), sa.column("status", sa.String),
    sa.column("worker_ref", sa.String),
)  # fmt: skip

#: a delivery's status -> the state of the place it came from
_FROM_DELIVERY = {
    "submitted": "submitted",
    "accepted": "accepted",
    "revision_requested": "revision_requested",
    "rejected": "rejected",
}
_HOLDING = {"open", "taken", "submitted", "revision_requested", "accepted"}


def upgrade():
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("external_ref", sa.String(length=120), nullable=True),
        sa.Column("worker_ref", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("fee_cents", sa.Integer(), nullable=False),
        sa.Column("held_cents", sa.Integer(), nullable=False),
        sa.Column("paid_cents", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("held_cents >= 0", name="held_nonneg"),
        sa.ForeignKeyConstraint(["dispatch_id"], ["dispatches.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["micro_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dispatch_id", "position"),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assignments_dispatch_id"), ["dispatch_id"])
        batch_op.create_index(batch_op.f("ix_assignments_job_id"), ["job_id"])
        batch_op.create_index(batch_op.f("ix_assignments_status"), ["status"])
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("assignment_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_deliveries_assignment_id"), ["assignment_id"])
        batch_op.create_foreign_key(
            "fk_deliveries_assignment_id", "assignments", ["assignment_id"], ["id"],
            ondelete="SET NULL",
        )  # fmt: skip
    _backfill(op.get_bind())


def _backfill(conn) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assignments = sa.table(
        "assignments", *(sa.column(c) for c in (
            "id", "dispatch_id", "job_id", "position", "worker_ref", "status", "price_cents",
            "fee_cents", "held_cents", "paid_cents", "created_at", "updated_at",
        )),
    )  # fmt: skip
    rows = conn.execute(
        sa.select(dispatches.c.id, dispatches.c.job_id, dispatches.c.state, jobs.c.status,
                  jobs.c.assignments, jobs.c.price_cents)
        .join(jobs, dispatches.c.job_id == jobs.c.id)
    ).all()  # fmt: skip
    for dispatch_id, job_id, state, job_status, places, price in rows:
        subs = conn.execute(
            sa.select(deliveries.c.id, deliveries.c.status, deliveries.c.worker_ref)
            .where(deliveries.c.dispatch_id == dispatch_id)
            .order_by(deliveries.c.id)
        ).all()
        for position in range(1, max(1, places or 1) + 1):
            mine = [s for i, s in enumerate(subs) if min(i + 1, places or 1) == position]
            status = _FROM_DELIVERY.get(mine[-1].status, "submitted") if mine else "open"
            if state in ("cancelled", "failed") and status in _HOLDING - {"accepted"}:
                status = "cancelled"
            elif state == "closed" and status in ("open", "taken"):
                status = "expired"
            if status == "accepted" and job_status == "paid":
                status = "paid"
            new_id = conn.execute(
                assignments.insert().values(
                    dispatch_id=dispatch_id, job_id=job_id, position=position,
                    worker_ref=mine[-1].worker_ref if mine else "", status=status,
                    price_cents=price or 0, fee_cents=0,
                    held_cents=(price or 0) if status in _HOLDING else 0,
                    paid_cents=(price or 0) if status == "paid" else 0,
                    created_at=now, updated_at=now,
                )
            ).inserted_primary_key[0]  # fmt: skip
            for sub in mine:
                conn.execute(
                    deliveries.update()
                    .where(deliveries.c.id == sub.id)
                    .values(assignment_id=new_id)
                )


def downgrade():
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deliveries_assignment_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_deliveries_assignment_id"))
        batch_op.drop_column("assignment_id")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_status"))
        batch_op.drop_index(batch_op.f("ix_assignments_job_id"))
        batch_op.drop_index(batch_op.f("ix_assignments_dispatch_id"))
    op.drop_table("assignments")
