"""Goals: what the owner sends to create or change one, and what the API answers."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from dispatcher.models import Goal
from dispatcher.planning.tree import goal_progress
from dispatcher.schemas.common import (
    Currency,
    PatchSchema,
    StrictBoolean,
    Text,
    cents_field,
    title_field,
)


class GoalCreateSchema(Schema):
    title = title_field(200, required=True)
    why = Text(validate=validate.Length(max=5000))
    metric_name = Text(validate=validate.Length(max=120), metadata={"example": "guest posts"})
    baseline = fields.Float(allow_nan=False, allow_none=True)
    target = fields.Float(allow_nan=False, allow_none=True, metadata={"example": 52})
    deadline = fields.Date(allow_none=True, metadata={"example": "2026-12-31"})
    currency = Currency()
    budget_cents = cents_field(metadata={"description": "the goal's budget, integer cents"})
    personal = StrictBoolean(metadata={"description": "personal goals never go to paid channels"})


class GoalUpdateSchema(GoalCreateSchema, PatchSchema):
    """Every field optional: PATCH changes only what it names."""

    title = title_field(200)


class ProgressSchema(Schema):
    """Leaves done out of leaves that count (cancelled ones do not), and money used."""

    done = fields.Integer()
    total = fields.Integer()
    percent = fields.Integer()
    minutes_done = fields.Integer()
    minutes_total = fields.Integer()
    percent_by_estimate = fields.Integer()
    reserved_cents = fields.Integer()
    spent_cents = fields.Integer()


class GoalSchema(Schema):
    id = fields.Integer(dump_only=True)
    title = fields.String()
    why = fields.String()
    metric_name = fields.String()
    baseline = fields.Float(allow_none=True)
    target = fields.Float(allow_none=True)
    deadline = fields.Date(allow_none=True)
    currency = fields.String()
    budget_cents = fields.Integer()
    reserved_cents = fields.Integer(metadata={"description": "held for jobs out at channels"})
    spent_cents = fields.Integer()
    available_cents = fields.Integer(metadata={"description": "budget - reserved - spent"})
    personal = fields.Boolean()
    created_at = fields.DateTime()
    progress = fields.Nested(ProgressSchema, dump_only=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # A Goal row has no progress column: it is counted from its leaves when shown.
        if attr == "progress" and isinstance(obj, Goal):
            return goal_progress(obj)
        return super().get_attribute(obj, attr, default)
