"""Reviews: the owner's decision on a delivery (accept and pay, ask for a revision, reject)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dispatcher.schemas.common import Text, cents_field


class AcceptSchema(Schema):
    payout_cents = cents_field(
        allow_none=True,
        load_default=None,
        metadata={"description": "0 up to the job's price; the full price when left out"},
    )
    rating = fields.Integer(
        strict=True, allow_none=True, load_default=None, validate=validate.Range(min=1, max=5)
    )


class ReviseSchema(Schema):
    feedback = Text(required=True, validate=validate.Length(min=1, max=20_000))


class RejectSchema(Schema):
    reason = Text(
        required=True,
        validate=validate.Length(min=1, max=20_000),
        metadata={"description": "the worker sees it"},
    )


class ReviewSchema(Schema):
    id = fields.Integer()
    delivery_id = fields.Integer()
    decision = fields.String(metadata={"example": "accept"})
    feedback = fields.String()
    rating = fields.Integer(allow_none=True)
    payout_cents = fields.Integer()
    created_at = fields.DateTime()
    job_status = fields.String(attribute="delivery.job.status")
