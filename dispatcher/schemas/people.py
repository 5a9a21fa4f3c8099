"""API input and output of people (the directory), their scorecards, and recorded pay.

The schemas check types and lengths; the rules a person's fields must keep (email syntax,
http(s) endpoint, rate not negative) are the directory service's, so a refusal reads the
same on the page and here (422 with the field named)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dispatcher.schemas.common import (
    MAX_INT,
    Currency,
    PatchSchema,
    StrictBoolean,
    Text,
    cents_field,
    title_field,
)


class PersonCreateSchema(Schema):
    name = title_field(120, required=True, metadata={"example": "Sam Writer"})
    email = Text(
        load_default="",
        validate=validate.Length(max=254),
        metadata={"description": "where the email channel writes", "example": "sam@example.com"},
    )
    rate_cents = cents_field(
        allow_none=True,
        load_default=None,
        metadata={"description": "pay per job when the job names no price, integer cents"},
    )
    currency = Currency(load_default="USD")
    slack_handle = Text(load_default="", validate=validate.Length(max=120))
    trello_handle = Text(load_default="", validate=validate.Length(max=120))
    asana_handle = Text(load_default="", validate=validate.Length(max=120))
    endpoint_url = Text(
        load_default="",
        validate=validate.Length(max=1000),
        metadata={"description": "their system's http(s) address, for the webhook channel"},
    )
    notes = Text(load_default="", validate=validate.Length(max=5000))


class PersonUpdateSchema(PatchSchema):
    """Every field optional: PATCH changes only what it names."""

    name = title_field(120)
    email = Text(validate=validate.Length(max=254))
    rate_cents = cents_field(allow_none=True)
    currency = Currency()
    slack_handle = Text(validate=validate.Length(max=120))
    trello_handle = Text(validate=validate.Length(max=120))
    asana_handle = Text(validate=validate.Length(max=120))
    endpoint_url = Text(validate=validate.Length(max=1000))
    notes = Text(validate=validate.Length(max=5000))
    archived = StrictBoolean(
        metadata={"description": "archived people leave the pickers; their history stays"}
    )


class ScorecardSchema(Schema):
    """Figures from the assignments that name the person; null until there is something to
    measure."""

    jobs_given = fields.Integer()
    delivered = fields.Integer(metadata={"description": "assignments with a delivery"})
    on_time_rate = fields.Float(
        allow_none=True, metadata={"description": "share delivered by the job's due date"}
    )
    first_pass_rate = fields.Float(
        allow_none=True,
        metadata={"description": "share of decided first submissions that were accepted"},
    )
    revisions_per_job = fields.Float(
        allow_none=True, metadata={"description": "revision requests per delivered assignment"}
    )
    average_turnaround_seconds = fields.Float(
        allow_none=True, metadata={"description": "order placed to first delivery"}
    )
    average_rating = fields.Float(allow_none=True)
    paid_cents = fields.Integer()


class PersonSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    rate_cents = fields.Integer(allow_none=True)
    currency = fields.String()
    slack_handle = fields.String()
    trello_handle = fields.String()
    asana_handle = fields.String()
    endpoint_url = fields.String()
    notes = fields.String()
    archived = fields.Boolean()
    created_at = fields.DateTime()
    scorecard = fields.Nested(ScorecardSchema)


class PaymentSchema(Schema):
    amount_cents = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=1, max=MAX_INT),
        metadata={"description": "what was paid now, integer cents"},
    )
    paid_before_cents = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(min=0, max=MAX_INT),
        metadata={
            "description": "the assignment's paid_cents as you last read it: if a payment "
            "was recorded since (a retry, a second click), this one is refused (409)"
        },
    )


class AssignmentSchema(Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    dispatch_id = fields.Integer()
    position = fields.Integer()
    person_id = fields.Integer(allow_none=True)
    worker_ref = fields.String()
    status = fields.String()
    price_cents = fields.Integer()
    held_cents = fields.Integer()
    paid_cents = fields.Integer()
