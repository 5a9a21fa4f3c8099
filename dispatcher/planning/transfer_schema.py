"""The goal export file (JSON), as marshmallow schemas: what import accepts, field by field."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Equal, Length, OneOf, Range, Regexp

from dispatcher.lifecycle import Status
from dispatcher.models import CADENCE_UNITS, DELIVERABLE_KINDS, MODES

FORMAT = "dispatcher.goal"
VERSION = 1
CENTS = Range(min=0, max=10**12)


class MetricValueSchema(Schema):
    on = fields.Date(required=True)
    value = fields.Float(required=True, allow_nan=False)
    note = fields.String(load_default="", validate=Length(max=500))


class GoalSchema(Schema):
    title = fields.String(required=True, validate=Length(1, 200))
    why = fields.String(load_default="", validate=Length(max=20_000))
    metric_name = fields.String(load_default="", validate=Length(max=120))
    baseline = fields.Float(load_default=None, allow_none=True, allow_nan=False)
    target = fields.Float(load_default=None, allow_none=True, allow_nan=False)
    deadline = fields.Date(load_default=None, allow_none=True)
    currency = fields.String(load_default="USD", validate=Regexp(r"^[A-Z]{3}$"))
    budget_cents = fields.Integer(load_default=0, validate=CENTS)
    reserved_cents = fields.Integer(load_default=0, validate=CENTS)
    spent_cents = fields.Integer(load_default=0, validate=CENTS)
    personal = fields.Boolean(load_default=False)


class JobSchema(Schema):
    path = fields.String(load_default=None, allow_none=True)  # informative; structure decides
    title = fields.String(required=True, validate=Length(1, 300))
    brief = fields.String(load_default="", validate=Length(max=20_000))
    acceptance_criteria = fields.List(
        fields.String(validate=Length(max=500)), load_default=list, validate=Length(max=100)
    )
    deliverable_kind = fields.String(load_default="text", validate=OneOf(DELIVERABLE_KINDS))
    estimate_minutes = fields.Integer(load_default=None, allow_none=True, validate=Range(0, 10**6))
    due_date = fields.Date(load_default=None, allow_none=True)
    planned_for = fields.Date(load_default=None, allow_none=True)
    price_cents = fields.Integer(load_default=0, validate=CENTS)
    free = fields.Boolean(load_default=False)
    mode = fields.String(load_default="undecided", validate=OneOf(MODES))
    channel = fields.String(load_default=None, allow_none=True, validate=Length(max=60))
    channel_options = fields.Dict(keys=fields.String(), load_default=dict)
    assignments = fields.Integer(load_default=1, validate=Range(1, 10_000))
    budget_cents = fields.Integer(load_default=None, allow_none=True, validate=CENTS)
    reserved_cents = fields.Integer(load_default=0, validate=CENTS)
    spent_cents = fields.Integer(load_default=0, validate=CENTS)
    status = fields.String(
        load_default=Status.DRAFT.value, validate=OneOf([s.value for s in Status])
    )
    finished_at = fields.AwareDateTime(load_default=None, allow_none=True)
    children = fields.List(fields.Nested(lambda: JobSchema()), load_default=list)


class CadenceRunSchema(Schema):
    period = fields.Integer(required=True, validate=Range(min=0))
    job_path = fields.String(load_default=None, allow_none=True)


class CadenceSchema(Schema):
    title = fields.String(required=True, validate=Length(1, 200))
    playbook = fields.String(required=True, validate=Length(1, 80))
    params = fields.Dict(keys=fields.String(), load_default=dict)
    definition = fields.Dict(keys=fields.String(), required=True)
    every = fields.Integer(load_default=1, validate=Range(1, 365))
    unit = fields.String(load_default="week", validate=OneOf(CADENCE_UNITS))
    starts_on = fields.Date(required=True)
    count = fields.Integer(load_default=None, allow_none=True, validate=Range(1, 1000))
    until = fields.Date(load_default=None, allow_none=True)
    last_period = fields.Integer(load_default=None, allow_none=True, validate=Range(min=0))
    active = fields.Boolean(load_default=True)
    parent_path = fields.String(load_default=None, allow_none=True)
    runs = fields.List(fields.Nested(CadenceRunSchema), load_default=list)


class GoalExportSchema(Schema):
    format = fields.String(required=True, validate=Equal(FORMAT))
    version = fields.Integer(required=True, validate=Equal(VERSION))
    exported_at = fields.String(load_default=None, allow_none=True)
    goal = fields.Nested(GoalSchema, required=True)
    metric_values = fields.List(fields.Nested(MetricValueSchema), load_default=list)
    jobs = fields.List(fields.Nested(JobSchema), load_default=list)
    cadences = fields.List(fields.Nested(CadenceSchema), load_default=list)
