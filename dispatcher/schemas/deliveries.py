"""Deliveries: work that came back for a job, waiting for (or past) the owner's review."""

from __future__ import annotations

from marshmallow import Schema, fields

from dispatcher.schemas.reviews import ReviewSchema


class DeliverySchema(Schema):
    id = fields.Integer()
    job_id = fields.Integer()
    job_title = fields.String(attribute="job.title")
    job_status = fields.String(attribute="job.status")
    goal_id = fields.Integer(attribute="job.goal_id")
    price_cents = fields.Integer(attribute="job.price_cents")
    currency = fields.String(attribute="job.goal.currency")
    dispatch_id = fields.Integer(allow_none=True)
    external_id = fields.String()
    worker_ref = fields.String()
    content = fields.String()
    url = fields.String(allow_none=True)
    status = fields.String(metadata={"example": "submitted"})
    received_at = fields.DateTime()
    reviews = fields.List(fields.Nested(ReviewSchema))
