"""Personal API tokens: the request that makes one, and the token as listed (no secret)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from dispatcher.auth_tokens import IssuedToken
from dispatcher.schemas.common import Text


class TokenCreateSchema(Schema):
    name = Text(
        required=True,
        validate=validate.Length(min=1, max=120),
        metadata={"example": "deploy script"},
    )
    email = fields.Email(
        validate=validate.Length(max=254),
        metadata={"description": "with password: for a script with no token yet"},
    )
    password = fields.String(load_only=True, validate=validate.Length(min=1, max=1000))

    @validates_schema
    def _both_or_neither(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("email" in data) != ("password" in data):
            missing = "password" if "email" in data else "email"
            raise ValidationError("email and password go together", missing)


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(metadata={"description": "the first characters, for display"})
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class TokenCreatedSchema(TokenSchema):
    """Dumps an `IssuedToken`: the row's fields, and the secret as `token`."""

    token = fields.String(
        metadata={"description": "the secret: shown this once, never again"},
    )

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        if isinstance(obj, IssuedToken):
            if attr == "token":
                return obj.secret
            return super().get_attribute(obj.token, attr, default)
        return super().get_attribute(obj, attr, default)
