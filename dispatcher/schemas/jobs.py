"""Micro-jobs: create, change, split, delegate; the job, its tree node, its timeline."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from dispatcher.lifecycle import Status, allowed_actions, derived_status, summarize
from dispatcher.models import DELIVERABLE_KINDS, MODES, MicroJob
from dispatcher.schemas.common import (
    MAX_INT,
    PatchSchema,
    Text,
    cents_field,
    count_field,
    title_field,
)
from dispatcher.schemas.goals import ProgressSchema

MAX_ASSIGNMENTS = 1000


class JobUpdateSchema(PatchSchema):
    """Every field optional: PATCH changes only what it names."""

    title = title_field(300)
    brief = Text(validate=validate.Length(max=20_000))
    acceptance_criteria = fields.List(
        Text(validate=validate.Length(min=1, max=1000)), validate=validate.Length(max=100)
    )
    deliverable_kind = fields.String(validate=validate.OneOf(DELIVERABLE_KINDS))
    estimate_minutes = count_field(allow_none=True)
    due_date = fields.Date(allow_none=True)
    planned_for = fields.Date(allow_none=True, metadata={"description": "the day to do it"})
    price_cents = cents_field(metadata={"description": "pay per assignment, integer cents"})
    free = fields.Boolean(
        metadata={
            "description": "the job pays nothing, said explicitly: a paid channel refuses a "
            "job with price_cents 0 unless free is true (422)"
        }
    )
    mode = fields.String(validate=validate.OneOf(MODES))
    channel = Text(allow_none=True, validate=validate.Length(min=1, max=60))
    connection_id = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "one of your connections"},
    )  # fmt: skip
    channel_options = fields.Dict(keys=fields.String())
    assignments = count_field(
        1, MAX_ASSIGNMENTS, metadata={"description": "how many workers should do it"}
    )
    budget_cents = cents_field(
        allow_none=True, metadata={"description": "optional envelope for this subtree"}
    )

    @validates_schema
    def _cost_fits(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("price_cents", 0) * data.get("assignments", 1) > MAX_INT:
            raise ValidationError("price x assignments is too large", "price_cents")
        if data.get("free") and data.get("price_cents"):
            raise ValidationError("a free job has no price: send price_cents 0", "price_cents")


class JobCreateSchema(JobUpdateSchema):
    title = title_field(300, required=True)
    parent_id = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "a job of the same goal"},
    )  # fmt: skip


class SplitSchema(Schema):
    titles = fields.List(title_field(300), required=True, validate=validate.Length(min=1, max=200))


class DelegateSchema(Schema):
    connection_id = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "one of your connections (GET /connections)", "example": 1},
    )
    channel = Text(
        validate=validate.Length(min=1, max=60),
        metadata={
            "description": "an adapter's name: your connection of that channel is used",
            "example": "sandbox",
        },
    )
    channel_options = fields.Dict(keys=fields.String(), load_default=dict)
    person_id = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={
            "description": "one of your people (GET /people) the job goes to; required by "
            "a teammate channel. Their rate becomes the price of a job that has none."
        },
    )

    @validates_schema
    def _one_channel(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("connection_id") is None and not data.get("channel"):
            raise ValidationError("give connection_id (or channel)", "connection_id")


class JobSchema(Schema):
    id = fields.Integer()
    goal_id = fields.Integer()
    parent_id = fields.Integer(allow_none=True)
    position = fields.Integer()
    title = fields.String()
    brief = fields.String()
    acceptance_criteria = fields.List(fields.String())
    deliverable_kind = fields.String()
    estimate_minutes = fields.Integer(allow_none=True)
    due_date = fields.Date(allow_none=True)
    planned_for = fields.Date(allow_none=True)
    price_cents = fields.Integer()
    free = fields.Boolean(metadata={"description": "stated to pay nothing"})
    cost_cents = fields.Integer(metadata={"description": "price x assignments"})
    currency = fields.String(attribute="goal.currency")
    mode = fields.String()
    channel = fields.String(allow_none=True)
    connection_id = fields.Integer(allow_none=True)
    channel_options = fields.Dict()
    person_id = fields.Integer(allow_none=True, metadata={"description": "the named person"})
    assignments = fields.Integer()
    version = fields.Integer(
        metadata={"description": "version of the title, brief and criteria (orders keep theirs)"}
    )
    status = fields.String(
        metadata={"description": "a leaf's own status; a parent's is derived from its leaves"}
    )
    summary = fields.Nested(
        lambda: SummarySchema(),
        allow_none=True,
        metadata={"description": "a parent's leaves group by group (null for a leaf)"},
    )
    allowed_actions = fields.List(
        fields.String(), metadata={"description": "lifecycle actions possible now (leaves)"}
    )
    is_leaf = fields.Boolean()
    budget_cents = fields.Integer(allow_none=True)
    reserved_cents = fields.Integer()
    spent_cents = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # A parent's stored status is ignored (DESIGN rule 2): show the one its leaves give.
        if isinstance(obj, MicroJob) and attr in (
            "status",
            "allowed_actions",
            "is_leaf",
            "summary",
        ):
            if attr == "is_leaf":
                return not obj.children
            if attr == "summary":
                return summarize(_leaf_statuses(obj)).as_dict() if obj.children else None
            if obj.children:
                return derived_status(_leaf_statuses(obj)) if attr == "status" else []
            return obj.status if attr == "status" else allowed_actions(obj.status)
        return super().get_attribute(obj, attr, default)


def _leaf_statuses(job: MicroJob) -> list[str]:
    if not job.children:
        return [job.status]
    return [s for child in job.children for s in _leaf_statuses(child)]


class SummarySchema(Schema):
    """A parent's leaves by group, and the same as the pages say it."""

    text = fields.String(metadata={"example": "2 out, 1 to review, 3 to do"})
    total = fields.Integer(metadata={"description": "leaves counted (cancelled ones are not)"})
    out = fields.Integer()
    to_review = fields.Integer()
    in_progress = fields.Integer()
    to_retry = fields.Integer()
    to_do = fields.Integer()
    done = fields.Integer()


class TreeNodeSchema(Schema):
    """One job in the goal's tree, with its derived status and the rollup of its subtree."""

    id = fields.Integer(attribute="job.id")
    parent_id = fields.Integer(attribute="job.parent_id", allow_none=True)
    title = fields.String(attribute="job.title")
    mode = fields.String(attribute="job.mode")
    channel = fields.String(attribute="job.channel", allow_none=True)
    price_cents = fields.Integer(attribute="job.price_cents")
    assignments = fields.Integer(attribute="job.assignments")
    estimate_minutes = fields.Integer(attribute="job.estimate_minutes", allow_none=True)
    due_date = fields.Date(attribute="job.due_date", allow_none=True)
    status = fields.String(
        validate=validate.OneOf([s.value for s in Status]),
        metadata={"description": "a leaf's own status, or derived from the leaves below"},
    )
    summary = fields.Function(
        lambda node: node.summary.as_dict() if node.summary is not None else None,
        allow_none=True,
        metadata={"description": "a parent's leaves group by group (null for a leaf)"},
    )
    depth = fields.Integer()
    is_leaf = fields.Boolean()
    progress = fields.Nested(ProgressSchema)
    children = fields.List(fields.Nested(lambda: TreeNodeSchema()))


class GoalTreeSchema(Schema):
    goal_id = fields.Integer()
    progress = fields.Nested(ProgressSchema)
    jobs = fields.List(fields.Nested(TreeNodeSchema))


class EventSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"example": "queue"})
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor = fields.String()
    data = fields.Dict()
    created_at = fields.DateTime()


class DispatchSchema(Schema):
    """One attempt to hand a job to its channel (staged in the DB, pushed by a worker)."""

    id = fields.Integer()
    job_id = fields.Integer()
    adapter = fields.String()
    state = fields.String(metadata={"example": "pending"})
    amount_cents = fields.Integer(metadata={"description": "reserved: price x assignments"})
    currency = fields.String()
    idempotency_key = fields.String()
    attempts = fields.Integer()
    job_version = fields.Integer(
        allow_none=True, metadata={"description": "the job's text version this order carries"}
    )
    external_id = fields.String(allow_none=True)
    external_url = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    placed_at = fields.DateTime(allow_none=True)


class CancelResultSchema(Schema):
    job = fields.Nested(JobSchema)
    note = fields.String(metadata={"description": "what happens at the platform, if anything"})
