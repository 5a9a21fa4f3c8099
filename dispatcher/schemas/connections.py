"""API input and output of connections: credentials go in, never come out."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from dispatcher.schemas.common import Text


class ConnectionCreateSchema(Schema):
    adapter = Text(
        required=True,
        validate=validate.Length(min=1, max=60),
        metadata={"description": "an installed adapter's name", "example": "sandbox"},
    )
    label = Text(load_default="", validate=validate.Length(max=120))
    credentials = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.Length(max=500)),
        load_default=dict,
        metadata={"description": "the adapter's credential_fields; stored encrypted"},
    )
    options = fields.Dict(
        keys=fields.String(),
        values=fields.String(validate=validate.Length(max=500)),
        load_default=dict,
    )


class ConnectionSchema(Schema):
    id = fields.Integer()
    adapter = fields.String()
    label = fields.String()
    options = fields.Dict()
    webhook_url = fields.Function(lambda c: _webhook_url(c))
    created_at = fields.DateTime()
    checked_at = fields.DateTime(allow_none=True)
    check_ok = fields.Boolean(allow_none=True)
    check_message = fields.String(allow_none=True)


class ConnectionSecretSchema(ConnectionSchema):
    """The answer to a creation or a rotation: the only time the secret is shown."""

    webhook_secret = fields.String(
        metadata={"description": "shown in this answer only: store it now"}
    )


class CheckSchema(Schema):
    ok = fields.Boolean()
    message = fields.String()


def _webhook_url(connection) -> str:
    from dispatcher import connections

    return connections.webhook_url(connection)
