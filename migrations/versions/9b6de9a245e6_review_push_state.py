"""review push state: every decision owed to a platform is staged on its Review row

Before this, only unpaid acceptances could be found again (from the job's status); a lost
push of a rejection or a revision request was never retried. Existing rows are backfilled:
a teammate's review has nothing to push; a paid acceptance was confirmed; a push noted as
refused stays refused; every other platform review is owed, with one attempt counted, so the
first push asks the platform what it already holds before sending the decision again.

Revision ID: 9b6de9a245e6
Revises: 65fc7542e22d
Create Date: 2026-12-01 03:29:10.030979

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "9b6de9a245e6"
down_revision = "65fc7542e22d"
branch_labels = None
depends_on = None

reviews = sa.table(
    "reviews",
    sa.column("id", sa.Integer),
    sa.column("delivery_id", sa.Integer),
    sa.column("decision", sa.String),
    sa.column("push_state", sa.String),
    sa.column("push_attempts", sa.Integer),
)
deliveries = sa.table(
    "deliveries",
    sa.column("id", sa.Integer),
    sa.column("job_id", sa.Integer),
    sa.column("dispatch_id", sa.Integer),
)
jobs = sa.table("micro_jobs", sa.column("id", sa.Integer), sa.column("status", sa.String))
events = sa.table(
    "events", sa.column("job_id", sa.Integer), sa.column("kind", sa.String),
    sa.column("data", sa.JSON),
)  # fmt: skip


def upgrade():
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("push_state", sa.String(length=10), nullable=False, server_default="owed")
        )
        batch_op.add_column(
            sa.Column("push_attempts", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.create_index(batch_op.f("ix_reviews_push_state"), ["push_state"], unique=False)
    _backfill(op.get_bind())
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.alter_column("push_state", server_default=None)
        batch_op.alter_column("push_attempts", server_default=None)


def _backfill(conn) -> None:
    rows = conn.execute(
        sa.select(reviews.c.id, reviews.c.decision, deliveries.c.dispatch_id, jobs.c.status)
        .select_from(reviews)
        .join(deliveries, reviews.c.delivery_id == deliveries.c.id)
        .join(jobs, deliveries.c.job_id == jobs.c.id)
    ).all()
    refused = {
        (row.data or {}).get("review_id")
        for row in conn.execute(
            sa.select(events.c.data).where(events.c.kind == "review_push_failed")
        )
    }
    states: dict[str, list[int]] = {"none": [], "pushed": [], "refused": []}
    for review_id, decision, dispatch_id, job_status in rows:
        if dispatch_id is None:
            states["none"].append(review_id)
        elif review_id in refused:
            states["refused"].append(review_id)
        elif decision == "accept" and job_status == "paid":
            states["pushed"].append(review_id)
    for state, ids in states.items():
        for start in range(0, len(ids), 500):
            conn.execute(
                reviews.update()
                .where(reviews.c.id.in_(ids[start : start + 500]))
                .values(push_state=state, push_attempts=0 if state == "none" else 1)
            )


def downgrade():
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_push_state"))
        batch_op.drop_column("push_attempts")
        batch_op.drop_column("push_state")
